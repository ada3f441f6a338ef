// Compaction: copy the live blocks of mostly-dead segments forward in Relocation entries (outside every chain), move
// the indexes with ExtentIndex.Relocate, and free the segments once a checkpoint that no longer needs them is durable.
using System.Buffers.Binary;
using CloudFs.BlockDevice.Compaction;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    private readonly SemaphoreSlim _compactionGate = new(1, 1);

    /// <summary>Every index that references log blocks: each volume's and the frozen parents of branches.</summary>
    private List<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> AllIndexes()
    {
        var result = new List<(Id160, ExtentIndex, VolumeState)>();
        var seen = new HashSet<ExtentIndex>(ReferenceEqualityComparer.Instance);
        foreach (var v in _volumes.Values)
        {
            if (!v.Committed) continue;
            lock (v.IndexLock)
                for (var x = v.Index; x is not null; x = x.Parent)
                    if (seen.Add(x)) result.Add((v.BaseId, x, v));
        }
        // A resync's staged copy (replica) and the snapshot a resync is sent from (primary) hold live blocks too.
        foreach (var (volume, index, owner) in ResyncIndexes())
            if (seen.Add(index)) result.Add((volume, index, owner));
        return result;
    }

    /// <summary>Reclaims segments with enough dead bytes, online, crash-safe.</summary>
    public Task<CompactionResult> CompactAsync(CancellationToken ct = default) => CompactAsync(checkpoint: true, ct);

    /// <summary>Tests pass checkpoint=false to leave relocations to be replayed (segments then stay in use).</summary>
    internal async Task<CompactionResult> CompactAsync(bool checkpoint, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        await _compactionGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // Scan a consistent picture: a barrier on the writer thread sees every applied entry and no index moving.
            List<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> snapshot = null!;
            var barrier = new BarrierItem(_ => snapshot = AllIndexes().Select(x => (x.Volume, x.Index.Snapshot(), x.Owner)).ToList());
            _appender.Enqueue(barrier);
            await barrier.Done.Task.ConfigureAwait(false);
            var (live, runs) = Compactor.ScanLive(_layout, snapshot.Select(x => (x.Volume, x.Index)));
            var (states, _) = _segments.Copy();
            var retained = RetainedSegments();
            var candidates = Enumerable.Range(0, states.Length)
                .Where(i => states[i] == SegmentState.Used && !retained.Contains(i) && 1.0 - (double)live[i] / _layout.SegmentSize >= _options.CompactionThreshold)
                .OrderBy(i => live[i]).ToList();
            // Keep a free segment in hand for the copies: compacting into a full log would fail half way.
            var budget = Math.Max(0L, (long)(_segments.FreeCount - 1) * _layout.SegmentSize);
            long copied = 0;
            var compacted = new HashSet<int>();
            foreach (var seg in candidates)
            {
                ct.ThrowIfCancellationRequested();
                var need = live[seg] + (runs.TryGetValue(seg, out var l) ? l.Count * 2L * BlockSize : 0);
                if (need > budget) break;
                budget -= need;
                var damaged = false;
                if (runs.TryGetValue(seg, out var list))
                    foreach (var run in list)
                    {
                        var (bytes, bad) = await RelocateRunAsync(run).ConfigureAwait(false);
                        copied += bytes;
                        damaged |= bad;
                    }
                // A segment still holding bad blocks stays: their entry headers hold the checksums a repair verifies
                // against, and the indexes still point there (reads fail on them, as the damage maps say).
                if (damaged) continue;
                MarkCompacted(seg);
                compacted.Add(seg);
            }
            var freed = 0;
            if (compacted.Count > 0 && checkpoint)
            {
                foreach (var seg in compacted) _segments.Set(seg, SegmentState.Reclaimed, _segments.SeqOf(seg));
                await WriteCheckpointAsync(ct).ConfigureAwait(false);
                freed = compacted.Count(s => _segments.StateOf(s) == SegmentState.Free);
            }
            return new CompactionResult(compacted.Count, copied, freed);
        }
        finally { _compactionGate.Release(); }
    }

    /// <summary>
    /// Copies one live run (verified against its CRCs) into Relocation entries and moves every index that still points
    /// at it. Blocks that fail their checksums are never copied (a copy would give them fresh, good checksums): they are
    /// marked damaged and left where they are, and Bad is true.
    /// </summary>
    private async Task<(long Copied, bool Bad)> RelocateRunAsync(LiveRun run)
    {
        var e = run.Extent;
        var vol = _volumes.TryGetValue(run.Volume, out var held) ? held : StagingOwner(run.Volume);
        long copied = 0;
        var anyBad = false;
        var bad = new List<BadRun>();
        for (var done = 0; done < e.Count; done += MaxBlocksPerEntry)
        {
            var n = Math.Min(MaxBlocksPerEntry, e.Count - done);
            var part = new Extent(e.Start + done, n, e.LogBlock + done, e.EntryBlock);
            var data = new byte[n * BlockSize];
            bad.Clear();
            ReadRunChecked(vol, part, data, bad);
            var at = 0;
            foreach (var b in bad)
            {
                MarkDamaged(part.Start + b.At, b.Count, part.LogBlock + b.At, b.Reason);
                if (b.At > at) copied += await RelocateBlocksAsync(vol, run.Volume, part, at, b.At - at, data, repair: false).ConfigureAwait(false);
                at = b.At + b.Count;
            }
            anyBad |= bad.Count > 0;
            if (at < n) copied += await RelocateBlocksAsync(vol, run.Volume, part, at, n - at, data, repair: false).ConfigureAwait(false);
        }
        return (copied, anyBad);
    }

    /// <summary>The flags byte of a Relocation entry, after the old log block in its parent field.</summary>
    private const int RelocationFlagsOffset = EntryHeader.OffParent + 8;
    /// <summary>Flag: the old place failed its checksum and these bytes came from a replica, checked against the old entry's CRCs.</summary>
    private const byte RelocationRepairFlag = 1;

    /// <summary>
    /// Appends blocks [at, at+count) of <paramref name="part"/> (their verified bytes at the same place in
    /// <paramref name="data"/>) in one Relocation entry and, once it is written, moves every index that still points at
    /// their old place; a repair also clears the damage of what now reads from the new place. Returns the bytes copied.
    /// </summary>
    private async Task<long> RelocateBlocksAsync(VolumeState vol, Id160 volume, Extent part, int at, int count, byte[] data, bool repair)
    {
        var meta = GetEntryMeta(vol, part);
        var lsn = BinaryPrimitives.ReadInt64LittleEndian(meta.AsSpan(EntryHeader.OffLsn));
        var start = part.Start + at;
        var oldLogBlock = part.LogBlock + at;
        var buf = EntryCodec.BuildData(EntryKind.Relocation, volume, start, data.AsSpan(at * BlockSize, count * BlockSize), Now);
        if (BinaryPrimitives.ReadUInt16LittleEndian(buf.Span[EntryHeader.OffStoredCount..]) != count)
        {
            // A stored block that is all zero cannot happen (zero blocks are never stored); refuse to move it rather than lose it.
            buf.Dispose();
            throw new DataCorruptionException(volume, start * BlockSize, (long)count * BlockSize, "a stored block reads as zeros");
        }
        EntryCodec.SetChain(buf.Span, volume, lsn, Id160.Zero, Id160.Zero);
        // The old place rides in the parent field (relocations are outside every chain): replay moves only what still points there.
        BinaryPrimitives.WriteInt64LittleEndian(buf.Span[EntryHeader.OffParent..], oldLogBlock);
        if (repair) buf.Span[RelocationFlagsOffset] = RelocationRepairFlag;
        var item = new EntryItem(buf, vol, EntryKind.Relocation, lsn, Id160.Zero, 0, durable: false)
        {
            AfterWrite = w =>
            {
                var newEntry = w.DeviceOffset / BlockSize;
                ApplyRelocation(start, count, oldLogBlock, newEntry);
                if (repair) ClearRepaired(start, count, newEntry + 1 + EntryHeader.TableSectorsFor(count));
            },
        };
        _appender.Enqueue(item);
        await item.Done.Task.ConfigureAwait(false);
        return (long)count * BlockSize;
    }

    private void ApplyRelocation(long start, int count, long oldLogBlock, long newEntryBlock)
    {
        var newLogBlock = newEntryBlock + 1 + EntryHeader.TableSectorsFor(count);
        foreach (var (_, index, owner) in AllIndexes())
            lock (owner.IndexLock) index.Relocate(start, count, oldLogBlock, newLogBlock, newEntryBlock);
    }

    private string? ReplayRelocation(ReadOnlySpan<byte> span, EntryHeader h, long block)
    {
        if (h.StoredCount != h.BlockCount) return "a relocation entry must store every block";
        var old = BinaryPrimitives.ReadInt64LittleEndian(span[EntryHeader.OffParent..]);
        ApplyRelocation(h.FirstBlock, h.BlockCount, old, block);
        // A repair written after the checkpoint that still lists its damage: what it restored is whole again.
        if ((span[RelocationFlagsOffset] & RelocationRepairFlag) != 0) ClearRepaired(h.FirstBlock, h.BlockCount, block + h.MetaSectors);
        return null;
    }

    /// <summary>Entries whose headers lived in a compacted segment can no longer be streamed.</summary>
    private void MarkCompacted(int seg)
    {
        var first = (_layout.SegmentOffset(seg)) / BlockSize;
        var end = first + _layout.SegmentSize / BlockSize;
        foreach (var v in _volumes.Values)
        {
            lock (v.IndexLock)
            {
                for (var l = v.Lsns.Count; l >= v.OldestStreamableLsn; l--)
                {
                    var b = v.Lsns.BlockOf(l);
                    if (b >= first && b < end) { v.OldestStreamableLsn = l + 1; break; }
                }
            }
        }
        _metaCache.Invalidate(first, end);
    }

    private void OnCheckpointDurable(IReadOnlySet<int> reclaimed)
    {
        if (reclaimed.Count == 0) return;
        WaitForEarlierReads();
        foreach (var seg in reclaimed)
        {
            var first = _layout.SegmentOffset(seg) / BlockSize;
            _metaCache.Invalidate(first, first + _layout.SegmentSize / BlockSize);
        }
        _segments.FreeReclaimed(reclaimed);
    }
}
