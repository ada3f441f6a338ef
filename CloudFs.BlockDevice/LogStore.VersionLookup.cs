// Where a version asked for by id is in this log's history: its volume and lsn (a version compaction reclaimed is told
// apart from one never held), and the chains a volume was branched from. Branching, version views, protection,
// retention and diffs (Streams/VersionDiff.cs) look versions up through these. Also the blocks one chain entry changes:
// the apply records it in the lsn table (LogStore.Commit.cs), a diff reads it from older entries' headers.
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>
    /// Where a version asked for by id is (volume, lsn), as <see cref="FindVersion"/>; a version whose entry this log
    /// appended but compaction reclaimed is refused with <see cref="VersionCompactedException"/> naming the oldest
    /// version of its volume still available, not as unknown.
    /// </summary>
    internal (Id160 Volume, long Lsn) LocateInHistory(Id160 version)
    {
        try { return FindVersion(version); }
        catch (UnknownVersionException)
        {
            foreach (var v in _volumes.Values)
            {
                if (!v.Committed) continue;
                long lsn, oldest;
                lock (v.IndexLock) (lsn, oldest) = (v.Lsns.Find(version), v.OldestStreamableLsn);
                if (lsn > 0 && lsn < oldest) throw new VersionCompactedException(version, OldestAvailableVersion(v));
            }
            throw;
        }
    }

    /// <summary>The oldest version of the volume whose later history is all still in the log.</summary>
    internal Id160 OldestAvailableVersion(VolumeState v)
    {
        long oldest;
        lock (v.IndexLock)
        {
            oldest = Math.Min(v.OldestStreamableLsn, v.Lsn);
            // A history base just before the oldest entry held (installed there by a full resync) is older still.
            if (v.History is { Lsn: > 0 } b && b.Lsn + 1 == oldest) return b.Version;
        }
        return VersionAt(v.BaseId, oldest);
    }

    /// <summary>The volume at <paramref name="lsn"/>, then each chain it was branched from at the branch point, as far
    /// as this log holds them.</summary>
    internal List<(VolumeState Vol, long Lsn)> Ancestry(VolumeState vol, long lsn)
    {
        var path = new List<(VolumeState, long)> { (vol, lsn) };
        for (var v = vol; v.BranchedFrom is { } parent;)
        {
            Id160 pv;
            long pl;
            try { (pv, pl) = FindVersion(parent); }
            catch (UnknownVersionException) { break; }
            if (!_volumes.TryGetValue(pv, out var next) || path.Exists(p => p.Item1 == next)) break;
            path.Add((next, pl));
            v = next;
        }
        return path;
    }

    /// <summary>The blocks one chain entry changes: a data entry's extent (its zero blocks too), a zero or trim entry's
    /// range, what a shrink dropped, and, for a full resync's commit, the whole volume (<paramref name="sizeBytes"/>).</summary>
    internal static BlockChange ChangeOf(EntryHeader h, ReadOnlySpan<byte> meta, long sizeBytes) => h.Kind switch
    {
        EntryKind.Data => new BlockChange(h.FirstBlock, h.BlockCount),
        EntryKind.Zero => new BlockChange(h.FirstBlock, h.CoveredBlocks(meta)),
        EntryKind.Resize when ResizePayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is { } r && r.NewSize < r.OldSize
            => new BlockChange(r.NewSize / BlockSize, (r.OldSize - r.NewSize) / BlockSize),
        EntryKind.ResyncCommit => new BlockChange(0, sizeBytes / BlockSize),
        _ => BlockChange.None,
    };
}
