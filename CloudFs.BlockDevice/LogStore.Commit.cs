// Applying an entry that is in the log to its volume's in-memory state: index, lsn table, head. The same code runs for
// live appends (writer thread), stream applies and recovery, so all three always agree.
using System.Buffers.Binary;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    private static EntryHeaderInfo ApplyCommitted(VolumeState v, ReadOnlySpan<byte> meta, long entryBlock)
    {
        if (!EntryHeader.TryParse(meta, out var h, out var err)) throw new InvalidOperationException($"a verified entry failed to parse: {err}");
        lock (v.IndexLock)
        {
            IndexEntry(v.Index, meta, h, entryBlock);
            // A write over a damaged range makes it whole again (the blocks it covers are new).
            if (v.Damage.Count > 0 && h.Kind is EntryKind.Data or EntryKind.Zero)
                v.Damage.Clear(h.FirstBlock * BlockSize, h.CoveredBlocks(meta) * BlockSize);
            v.Lsns.Add(entryBlock, h.Version, ChangeOf(h, meta, v.SizeBytes));
            if (h.Kind == EntryKind.Protect) ApplyProtection(v, meta, h);
            v.Lsn = h.Lsn;
            v.Version = h.Version;
            v.HeadParent = h.Parent;
            v.HeadDigest = h.Digest;
            if (h.Kind is EntryKind.Create or EntryKind.Branch) v.Committed = true;
            if (h.Kind == EntryKind.ViewChange) Ownership.ApplyView(v, meta, h);
            if (h.Kind is EntryKind.Trash or EntryKind.Restore or EntryKind.Resize) ApplyLifecycle(v, meta, h);
            v.Touch();
        }
        return InfoOf(h, meta);
    }

    /// <summary>Maps an entry's blocks into an index: stored runs to their log blocks, zero runs to holes (or explicit zeros over a branch parent).</summary>
    internal static void IndexEntry(ExtentIndex index, ReadOnlySpan<byte> meta, EntryHeader h, long entryBlock)
    {
        var zeroHides = index.Parent is not null;
        void Zero(long start, long count)
        {
            if (!zeroHides) { index.Remove(start, count); return; }
            for (long o = 0; o < count;)
            {
                var n = (int)Math.Min(count - o, 1 << 30);
                index.Insert(start + o, n, Extent.ZeroLogBlock, entryBlock);
                o += n;
            }
        }
        switch (h.Kind)
        {
            case EntryKind.Data or EntryKind.ResyncData:
            {
                var dataStart = entryBlock + h.MetaSectors;
                foreach (var run in new StoredRuns(meta, h.BlockCount))
                {
                    if (run.Stored) index.Insert(h.FirstBlock + run.First, run.Count, dataStart + run.StoredIndex, entryBlock);
                    else Zero(h.FirstBlock + run.First, run.Count);
                }
                break;
            }
            case EntryKind.Zero:
                Zero(h.FirstBlock, BinaryPrimitives.ReadInt64LittleEndian(meta[EntryHeader.OffBitmap..]));
                break;
            case EntryKind.Resize:
            {
                // A shrink drops the blocks beyond the new end (over a branch parent too), so a later grow reads zeros there.
                var p = ResizePayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength));
                if (p is not null && p.NewSize < p.OldSize) Zero(p.NewSize / BlockSize, (p.OldSize - p.NewSize) / BlockSize);
                break;
            }
        }
    }
}
