// The size of a volume at one of its versions: set by its creation or branch entry, then by each resize entry of its
// chain. A version is read (VOL@VERSION), diffed and branched at its own size, not at the volume's current one: after a
// shrink an older version still reads its data past the new end, after a grow it is still as small as it was. The
// head's size is the volume's. An older version's, for a view or a branch, is the history base's size
// (HistoryBase.SizeBytes) carried through the headers after the base, the same walk that rebuilds the version's index
// (HistoricIndex); for a diff, which needs only the entries after the version, it is walked back from the head over
// those entries (each resize entry carries the size before it), mostly from the lsn table without a header read.
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>
    /// The size in bytes of <paramref name="volume"/> as it was at <paramref name="version"/> (of its own chain or of a
    /// chain it was branched from): what the export VOL@VERSION serves. Throws as <see cref="ReadVersionAsync"/> does
    /// when the version cannot be read.
    /// </summary>
    public async ValueTask<long> VersionSizeAsync(Id160 volume, Id160 version, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var view = await ViewOf(Volume(volume), version).ConfigureAwait(false);
        Volatile.Write(ref view.LastUsedTicks, Environment.TickCount64);
        return view.SizeBytes;
    }

    /// <summary>The size after entry <paramref name="h"/> (its header and payload in <paramref name="meta"/>), given the
    /// size before it: a creation or branch entry's, a resize entry's new size, else unchanged.</summary>
    private static long SizeAfter(long before, EntryHeader h, ReadOnlySpan<byte> meta)
    {
        var payload = meta.Slice(EntryHeader.OffBitmap, h.PayloadLength);
        return h.Kind switch
        {
            EntryKind.Create or EntryKind.Branch => CreatePayload.Decode(payload, h.Kind == EntryKind.Branch)?.SizeBytes
                ?? throw new InvalidOperationException($"a verified {h.Kind} entry of volume {h.Volume} has a malformed payload"),
            EntryKind.Resize => ResizePayload.Decode(payload)?.NewSize
                ?? throw new InvalidOperationException($"a verified resize entry of volume {h.Volume} has a malformed payload"),
            _ => before,
        };
    }

    /// <summary>
    /// The size of <paramref name="vol"/> at <paramref name="lsn"/> from the entries after it, walked back from the head
    /// (what a diff from lsn needs anyway; the entries before it may be gone): each resize entry carries the size before
    /// it. The lsn table tells most entries apart without a header: a data or zero entry's range lies within the size
    /// after it, a shrink's starts exactly there (it is what the shrink dropped); only entries that changed no block (a
    /// grow, other metadata) or whose change is not known yet have their header read.
    /// </summary>
    internal long SizeBefore(VolumeState vol, long lsn)
    {
        long head, size;
        lock (vol.IndexLock) (head, size) = (vol.Lsn, vol.SizeBytes);
        byte[]? meta = null;
        HeaderWindow? window = null;
        try
        {
            for (var l = head; l > lsn; l--)
            {
                BlockChange c;
                long block;
                lock (vol.IndexLock) (c, block) = (vol.Lsns.ChangeOf(l), vol.Lsns.BlockOf(l));
                if (c is { IsKnown: true, Count: > 0 })
                {
                    if (c.First * BlockSize == size) size = (c.First + c.Count) * BlockSize; // a shrink
                    continue;
                }
                meta ??= new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
                window ??= new HeaderWindow(_device, meta.Length);
                var h = CheckedHeader(vol, window.At(block), block, l, meta);
                if (h.Kind == EntryKind.Resize)
                    size = ResizePayload.Decode(meta.AsSpan(EntryHeader.OffBitmap, h.PayloadLength))?.OldSize
                           ?? throw new InvalidOperationException($"a verified resize entry of volume {h.Volume} has a malformed payload");
            }
            return size;
        }
        finally { window?.Dispose(); }
    }

    /// <summary>The size at the history base. A base from a checkpoint written before sizes were kept has none: it is
    /// the size before the first resize entry after the base (each carries the size before it), else the head's; the
    /// base keeps it from then on.</summary>
    private long SizeAtBase(VolumeState vol, HistoryBase b)
    {
        if (b.SizeBytes != HistoryBase.UnknownSize) return b.SizeBytes;
        var size = SizeBefore(vol, b.Lsn);
        lock (vol.IndexLock)
            if (ReferenceEquals(vol.History, b)) vol.History = b with { SizeBytes = size };
        return size;
    }
}
