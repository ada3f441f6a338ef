// Changed-block tracking: the ranges that differ between two versions of a volume, from the headers of the chain
// entries between them (data, zeroes, trims, a shrink), merged. No data is read: the lsn table keeps in memory the
// range each entry appended or replayed since the store opened changed; older entries' headers are read (in a few large
// device reads, sorted by place in the log) once. The cost follows the number of entries written between the versions,
// not the size of the volume. A version of the chain a volume was branched from
// counts as well: the entries on both sides of their common point are the ones that differ.
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Streams;

/// <summary>
/// Changed-block tracking between two versions of a volume (<see cref="VersionStreams.ChangedBetweenAsync"/>). It owns no
/// state: what it learns of older entries' ranges goes into each volume's lsn table, under its IndexLock.
/// </summary>
internal sealed class VersionDiff
{
    /// <summary>Header reads for a diff: at most this many bytes in one read, and gaps of up to <see cref="DiffReadGap"/>
    /// between headers are read through rather than split into another read.</summary>
    private const int DiffReadBytes = 1 << 20, DiffReadGap = 16 << 10;
    /// <summary>Header reads a diff keeps in flight: the device answers several at once far faster than one by one.</summary>
    private const int DiffReadsInFlight = 8;

    private const int BlockSize = LogStore.BlockSize;

    private readonly LogStore _store;
    private readonly ILogDevice _device;

    internal VersionDiff(LogStore store, ILogDevice device)
    {
        _store = store;
        _device = device;
    }

    /// <summary>The ranges that changed between two versions (<see cref="VersionStreams.ChangedBetweenAsync"/>).</summary>
    internal async Task<ChangedRanges> ChangedBetweenAsync(Id160 volume, Id160 from, Id160? to = null, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        // No header the diff reads is reclaimed, nor the lsn tables rewound, while it reads them.
        await _store.CompactionGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            long toLsn;
            Id160 toVersion;
            if (to is { } t)
            {
                var (tv, tl) = _store.LocateInHistory(t);
                if (tv != volume) throw new InvalidRangeException($"version {t} is not a version of volume {volume}");
                (toLsn, toVersion) = (tl, t);
            }
            else
                lock (vol.IndexLock) (toLsn, toVersion) = (vol.Lsn, vol.Version);
            var (fromVolume, fromLsn) = _store.LocateInHistory(from);
            var path = _store.Ancestry(vol, toLsn);
            var at = path.FindIndex(p => p.Vol.BaseId == fromVolume);
            if (at < 0)
                throw new InvalidRangeException($"version {from} is not in the history of volume {volume} (its own chain or a chain it was branched from)");
            var blocks = new List<(long Start, long Count)>();
            // The branches between the volume and FROM's chain: all their own entries (lsn 1 is the branch entry).
            for (var i = 0; i < at; i++) CollectChanges(path[i].Vol, 1, path[i].Lsn, from, blocks, ct);
            // FROM's chain: the entries between FROM and the point the path leaves it, on whichever side FROM is.
            var (lo, hi) = fromLsn <= path[at].Lsn ? (fromLsn, path[at].Lsn) : (path[at].Lsn, fromLsn);
            CollectChanges(path[at].Vol, lo, hi, from, blocks, ct);
            // Each version at its own size (LogStore.VersionSizes.cs), from the entries after it (no more than the diff
            // reads); the ranges cover the larger of the two: a shrink in between reports what it dropped (gone in TO),
            // a grow reports nothing it did not write (zeros).
            var toSize = _store.SizeBefore(vol, toLsn);
            var fromSize = _store.SizeBefore(path[at].Vol, fromLsn);
            return new ChangedRanges(volume, from, toVersion, Merge(blocks, Math.Max(fromSize, toSize))) { FromSizeBytes = fromSize, ToSizeBytes = toSize };
        }
        finally { _store.CompactionGate.Release(); }
    }

    /// <summary>Adds the block ranges the entries (<paramref name="after"/>, <paramref name="through"/>] of
    /// <paramref name="vol"/> changed to <paramref name="blocks"/>: from the lsn table where it knows them, else from
    /// the entries' headers (read once: what they say is kept there for the next diff).</summary>
    private void CollectChanges(VolumeState vol, long after, long through, Id160 asked, List<(long, long)> blocks, CancellationToken ct)
    {
        if (through <= after) return;
        var unknown = new List<(long Block, long Lsn)>();
        var compacted = false;
        lock (vol.IndexLock)
        {
            if (through > vol.Lsns.Count) throw new InvalidRangeException($"volume {vol.BaseId} holds lsns up to {vol.Lsns.Count}, not {through}");
            if (after + 1 < vol.OldestStreamableLsn) compacted = true;
            else
                for (var l = after + 1; l <= through; l++)
                {
                    var c = vol.Lsns.ChangeOf(l);
                    if (!c.IsKnown) unknown.Add((vol.Lsns.BlockOf(l), l));
                    else if (c.Count > 0) blocks.Add((c.First, c.Count));
                }
        }
        if (compacted) throw new VersionCompactedException(asked, _store.OldestAvailableVersion(vol));
        if (unknown.Count > 0) ReadChanges(vol, unknown, blocks, ct);
    }

    /// <summary>The changes of entries the lsn table does not know yet, from their headers: sorted by place in the log,
    /// grouped into reads of up to <see cref="DiffReadBytes"/>, <see cref="DiffReadsInFlight"/> reads at a time; each
    /// is recorded in the lsn table.</summary>
    private void ReadChanges(VolumeState vol, List<(long Block, long Lsn)> headers, List<(long, long)> blocks, CancellationToken ct)
    {
        headers.Sort();
        var maxMeta = EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(LogStore.MaxEntryBlocks));
        var reads = new List<(int First, int End, long Start, long Stop)>();
        for (var i = 0; i < headers.Count;)
        {
            // One read: from the first header's page through the meta of the last header within reach.
            var start = headers[i].Block * BlockSize & ~(long)(AlignedBuffer.Alignment - 1);
            var end = headers[i].Block * BlockSize + maxMeta;
            var j = i + 1;
            while (j < headers.Count && headers[j].Block * BlockSize + maxMeta - start <= DiffReadBytes + maxMeta
                   && headers[j].Block * BlockSize - end <= DiffReadGap)
                end = headers[j++].Block * BlockSize + maxMeta;
            end = Math.Min((end + AlignedBuffer.Alignment - 1) & ~(long)(AlignedBuffer.Alignment - 1), _device.Size);
            reads.Add((i, j, start, end));
            i = j;
        }
        var found = new BlockChange[headers.Count];
        var bufferBytes = (DiffReadBytes + maxMeta + 2 * AlignedBuffer.Alignment) & ~(AlignedBuffer.Alignment - 1);
        var options = new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = DiffReadsInFlight };
        Parallel.ForEach(reads, options,
            () => (Buffer: new AlignedBuffer(bufferBytes), Meta: new byte[maxMeta]),
            (r, _, local) =>
            {
                var span = local.Buffer.Span[..(int)(r.Stop - r.Start)];
                _device.Read(span, r.Start);
                for (var k = r.First; k < r.End; k++)
                {
                    var (block, lsn) = headers[k];
                    var h = LogStore.CheckedHeader(vol, span[(int)(block * BlockSize - r.Start)..], block, lsn, local.Meta);
                    found[k] = LogStore.ChangeOf(h, local.Meta, vol.SizeBytes);
                }
                return local;
            },
            local => ((IDisposable)local.Buffer).Dispose());
        lock (vol.IndexLock)
        {
            var known = new List<(long, BlockChange)>(headers.Count);
            for (var k = 0; k < headers.Count; k++)
            {
                var (block, lsn) = headers[k];
                if (lsn <= vol.Lsns.Count && vol.Lsns.BlockOf(lsn) == block) known.Add((lsn, found[k]));
            }
            vol.Lsns.SetChanges(known);
        }
        // The next checkpoint keeps what was learnt (its changes section), so a restart does not read these again.
        _store.Checkpoints.NoteChange();
        foreach (var c in found)
            if (c.Count > 0) blocks.Add((c.First, c.Count));
    }

    /// <summary>Block ranges sorted and merged into byte ranges, cut at <paramref name="size"/> bytes.</summary>
    private static List<ChangedRange> Merge(List<(long Start, long Count)> blocks, long size)
    {
        blocks.Sort();
        var limit = size / BlockSize;
        var result = new List<ChangedRange>();
        long curStart = -1, curEnd = -1;
        foreach (var (start, count) in blocks)
        {
            var end = Math.Min(limit, start + count);
            if (end <= start) continue;
            if (curEnd >= start) { curEnd = Math.Max(curEnd, end); continue; }
            if (curEnd > curStart) result.Add(new ChangedRange(curStart * BlockSize, (curEnd - curStart) * BlockSize));
            (curStart, curEnd) = (start, end);
        }
        if (curEnd > curStart) result.Add(new ChangedRange(curStart * BlockSize, (curEnd - curStart) * BlockSize));
        return result;
    }
}
