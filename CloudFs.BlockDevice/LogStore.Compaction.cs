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
                if (runs.TryGetValue(seg, out var list))
                    foreach (var run in list) copied += await RelocateRunAsync(run).ConfigureAwait(false);
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

    /// <summary>Copies one live run (verified against its CRCs) into Relocation entries and moves every index that still points at it.</summary>
    private async Task<long> RelocateRunAsync(LiveRun run)
    {
        var e = run.Extent;
        var vol = _volumes.TryGetValue(run.Volume, out var held) ? held : StagingOwner(run.Volume);
        long copied = 0;
        for (var done = 0; done < e.Count; done += MaxBlocksPerEntry)
        {
            var n = Math.Min(MaxBlocksPerEntry, e.Count - done);
            var part = new Extent(e.Start + done, n, e.LogBlock + done, e.EntryBlock);
            var data = new byte[n * BlockSize];
            ReadRun(vol, part, data);
            var meta = GetEntryMeta(vol, part);
            var lsn = BinaryPrimitives.ReadInt64LittleEndian(meta.AsSpan(EntryHeader.OffLsn));
            var buf = EntryCodec.BuildData(EntryKind.Relocation, run.Volume, part.Start, data, Now);
            if (BinaryPrimitives.ReadUInt16LittleEndian(buf.Span[EntryHeader.OffStoredCount..]) != n)
            {
                // A stored block that is all zero cannot happen (zero blocks are never stored); refuse to move it rather than lose it.
                buf.Dispose();
                throw new DataCorruptionException(run.Volume, part.Start * BlockSize, (long)n * BlockSize, "a stored block reads as zeros");
            }
            EntryCodec.SetChain(buf.Span, run.Volume, lsn, Id160.Zero, Id160.Zero);
            // The old place rides in the parent field (relocations are outside every chain): replay moves only what still points there.
            BinaryPrimitives.WriteInt64LittleEndian(buf.Span[EntryHeader.OffParent..], part.LogBlock);
            var item = new EntryItem(buf, vol, EntryKind.Relocation, lsn, Id160.Zero, 0, durable: false)
            {
                AfterWrite = w => ApplyRelocation(part.Start, n, part.LogBlock, w.DeviceOffset / BlockSize),
            };
            _appender.Enqueue(item);
            await item.Done.Task.ConfigureAwait(false);
            copied += (long)n * BlockSize;
        }
        return copied;
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
