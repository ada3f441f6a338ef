// Compaction: copy the live blocks of mostly-dead segments forward in Relocation entries (outside every chain, into the
// segments kept for them), move the indexes with ExtentIndex.Relocate, and free the segments once a checkpoint that no
// longer needs them is durable. When it runs by itself: LogStore.Space.cs.
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

    /// <summary>The compaction gate, for the services whose reads no relocation may move meanwhile (diffs).</summary>
    internal SemaphoreSlim CompactionGate => _compactionGate;

    /// <summary>Every index that references log blocks: each volume's and the frozen parents of branches.</summary>
    internal List<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> AllIndexes()
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
        foreach (var (volume, index, owner) in Resync.Indexes())
            if (seen.Add(index)) result.Add((volume, index, owner));
        // A version read over NBD (VOL@VERSION) reads through a frozen index of its own (LogStore.VersionViews.cs).
        foreach (var (volume, index, owner) in VersionViewIndexes())
            if (seen.Add(index)) result.Add((volume, index, owner));
        // The oldest version each volume keeps for cloudfs.retention.time (LogStore.VersionRetention.cs).
        foreach (var (volume, index, owner) in HistoryIndexes())
            if (seen.Add(index)) result.Add((volume, index, owner));
        return result;
    }

    /// <summary>
    /// Reclaims segments with enough dead bytes, online, crash-safe. While free space is short (the low-water mark is
    /// reached or appends wait for room) any segment whose copy frees space qualifies, not only those past the threshold.
    /// </summary>
    public Task<CompactionResult> CompactAsync(CancellationToken ct = default) => CompactAsync(checkpoint: true, ct);

    /// <summary>
    /// The node's periodic pass: as <see cref="CompactAsync(CancellationToken)"/>, but while free space is not short a
    /// segment must also be at least as dead as the log is free (<see cref="Compactor.ScheduledThreshold"/>), so a
    /// mostly free log copies only nearly empty segments and leaves the rest to grow deader (and cheaper) first.
    /// </summary>
    public async Task<CompactionResult> CompactOnScheduleAsync(CancellationToken ct = default) =>
        (await CompactPassAsync(checkpoint: true, ct, scheduled: true).ConfigureAwait(false)).Result;

    // What the last pass saw (under the compaction gate): the entries placed in the log, and when history may next be
    // released by time alone (Unix ms). A scheduled pass with neither changed is skipped.
    private long _appendedAtLastPass = -1, _historyReleaseDue;

    /// <summary>Tests pass checkpoint=false to leave relocations to be replayed (segments then stay in use).</summary>
    internal async Task<CompactionResult> CompactAsync(bool checkpoint, CancellationToken ct = default) =>
        (await CompactPassAsync(checkpoint, ct).ConfigureAwait(false)).Result;

    /// <summary>One pass; also when (Stopwatch timestamp on the writer thread) it took its picture of the live data.</summary>
    private async Task<(CompactionResult Result, long ScannedAt)> CompactPassAsync(bool checkpoint, CancellationToken ct, bool scheduled = false)
    {
        ThrowIfDisposed();
        await _compactionGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var pressed = SpaceIsShort;
            // An idle log's scheduled pass would find what the last one found: no entry appended since, no segment
            // waiting for a checkpoint to free it, and no history the retention time releases yet. Skipped, so an idle
            // node does not look at every volume every interval (issue 14: 100,000 volumes).
            var appended = Volatile.Read(ref _appender.Stats.Entries);
            if (scheduled && !pressed && appended == _appendedAtLastPass && DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() < _historyReleaseDue
                && !_segments.Copy().States.Contains(SegmentState.Reclaimed))
            {
                Interlocked.Increment(ref _passesSkipped);
                return (new CompactionResult(0, 0, 0), 0);
            }
            // History older than the retention time is released first (all of it while space is short).
            _historyReleaseDue = AdvanceHistoryBases(pressed);
            _appendedAtLastPass = appended;
            // Scan a consistent picture: a barrier on the writer thread sees every applied entry and no index moving.
            List<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> snapshot = null!;
            long scannedAt = 0;
            var barrier = new BarrierItem(_ =>
            {
                scannedAt = System.Diagnostics.Stopwatch.GetTimestamp();
                snapshot = AllIndexes().Select(x => (x.Volume, x.Index.Snapshot(), x.Owner)).ToList();
            });
            _appender.Enqueue(barrier);
            await barrier.Done.Task.ConfigureAwait(false);
            var (live, runs) = Compactor.ScanLive(_layout, snapshot.Select(x => (x.Volume, x.Index)));
            var (states, _) = _segments.Copy();
            // The copies go into the segments kept for them: ordinary appends may take every other free one meanwhile.
            var free = _segments.FreeCount;
            var budgetSegments = _reserveSegments > 0 ? Math.Min(free, _reserveSegments) : Math.Max(0, free - 1);
            double? threshold = pressed ? null
                : scheduled ? Compactor.ScheduledThreshold(_options.CompactionThreshold, free, _layout.SegmentCount)
                : _options.CompactionThreshold;
            var retained = RetainedSegments();
            retained.UnionWith(HistorySegments(pressed));
            var plan = Compactor.Plan(_layout, states, live, runs, retained, threshold,
                budgetSegments * Compactor.UsableBytes(_layout, RelocationPieceBlocks), RelocationPieceBlocks);
            long copied = 0;
            var compacted = new HashSet<int>();
            try
            {
                foreach (var seg in plan)
                {
                    ct.ThrowIfCancellationRequested();
                    if (runs.TryGetValue(seg, out var list))
                    {
                        var (bytes, bad) = await RelocateAsync(list).ConfigureAwait(false);
                        copied += bytes;
                        // A segment still holding bad blocks stays: their entry headers hold the checksums a repair
                        // verifies against, and the indexes still point there (reads fail on them, as the damage maps say).
                        if (bad) continue;
                    }
                    compacted.Add(seg);
                }
            }
            catch (LogFullException e)
            {
                // The plan keeps within the reserve, so this should not happen; what was copied whole is still reclaimed.
                _options.Log?.Invoke($"compaction stopped after {compacted.Count} segment(s): {e.Message}");
            }
            finally
            {
                MarkCompacted(compacted);
            }
            foreach (var seg in compacted) _segments.Set(seg, SegmentState.Reclaimed, _segments.SeqOf(seg));
            // The next durable checkpoint frees them (also one taken on the timer, should this one not be written).
            if (compacted.Count > 0) Checkpoints.NoteChange();
            var freed = 0;
            if (checkpoint && (compacted.Count > 0 || _segments.Copy().States.Contains(SegmentState.Reclaimed)))
                freed = await Checkpoints.WriteAndFreeAsync(ct).ConfigureAwait(false);
            Interlocked.Increment(ref _passCount);
            Interlocked.Add(ref _segmentsCompacted, compacted.Count);
            Interlocked.Add(ref _bytesCopied, copied);
            return (new CompactionResult(compacted.Count, copied, freed), scannedAt);
        }
        finally { _compactionGate.Release(); }
    }

    /// <summary>
    /// Blocks in one relocation entry: small enough that the tail a segment cannot fit (at most one entry) stays a
    /// sixteenth of it, so the plan's room estimate holds on small segments too.
    /// </summary>
    private int RelocationPieceBlocks => Math.Max(1, Math.Min(MaxBlocksPerEntry, _layout.SegmentSize / 16 / BlockSize));

    /// <summary>
    /// Copies a segment's live runs (verified against their CRCs) into relocation entries, all in flight together; Bad
    /// is true when some block failed its checksum and was left where it is.
    /// </summary>
    private async Task<(long Copied, bool Bad)> RelocateAsync(List<LiveRun> runs)
    {
        var pending = new List<Task>();
        long copied = 0;
        var bad = false;
        try
        {
            foreach (var run in runs)
            {
                var (bytes, anyBad) = RelocateRun(run, pending);
                copied += bytes;
                bad |= anyBad;
            }
        }
        finally
        {
            // Whatever was queued completes (or fails) before the caller moves on.
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
        return (copied, bad);
    }

    /// <summary>
    /// Queues one live run's relocation entries; each moves every index that still points at the old place once written.
    /// Blocks that fail their checksums are never copied (a copy would give them fresh, good checksums): they are marked
    /// damaged and left where they are, and Bad is true.
    /// </summary>
    private (long Copied, bool Bad) RelocateRun(LiveRun run, List<Task> pending)
    {
        var e = run.Extent;
        var vol = _volumes.TryGetValue(run.Volume, out var held) ? held : Resync.StagingOwner(run.Volume);
        long copied = 0;
        var anyBad = false;
        var bad = new List<BadRun>();
        for (var done = 0; done < e.Count; done += RelocationPieceBlocks)
        {
            var n = Math.Min(RelocationPieceBlocks, e.Count - done);
            var part = new Extent(e.Start + done, n, e.LogBlock + done, e.EntryBlock);
            var data = new byte[n * BlockSize];
            bad.Clear();
            ReadRunChecked(vol, part, data, bad);
            var at = 0;
            foreach (var b in bad)
            {
                Damage.Mark(part.Start + b.At, b.Count, part.LogBlock + b.At, b.Reason);
                if (b.At > at) { pending.Add(EnqueueRelocation(vol, run.Volume, part, at, b.At - at, data, repair: false)); copied += (long)(b.At - at) * BlockSize; }
                at = b.At + b.Count;
            }
            anyBad |= bad.Count > 0;
            if (at < n) { pending.Add(EnqueueRelocation(vol, run.Volume, part, at, n - at, data, repair: false)); copied += (long)(n - at) * BlockSize; }
        }
        return (copied, anyBad);
    }

    /// <summary>The flags byte of a Relocation entry, after the old log block in its parent field.</summary>
    private const int RelocationFlagsOffset = EntryHeader.OffParent + 8;
    /// <summary>Flag: the old place failed its checksum and these bytes came from a replica, checked against the old entry's CRCs.</summary>
    private const byte RelocationRepairFlag = 1;

    /// <summary>
    /// Appends blocks [at, at+count) of <paramref name="part"/> (their verified bytes at the same place in
    /// <paramref name="data"/>) in one Relocation entry and waits for it: see <see cref="EnqueueRelocation"/>.
    /// </summary>
    internal async Task<long> RelocateBlocksAsync(VolumeState vol, Id160 volume, Extent part, int at, int count, byte[] data, bool repair, long lsn = 0)
    {
        await EnqueueRelocation(vol, volume, part, at, count, data, repair, lsn).ConfigureAwait(false);
        return (long)count * BlockSize;
    }

    /// <summary>
    /// Queues blocks [at, at+count) of <paramref name="part"/> in one Relocation entry; once it is written, every index
    /// that still points at their old place moves, and a repair also clears the damage of what now reads from the new place.
    /// The entry carries the lsn of the blocks' entry: <paramref name="lsn"/>, or (0) the one the old entry's header names.
    /// </summary>
    private Task EnqueueRelocation(VolumeState vol, Id160 volume, Extent part, int at, int count, byte[] data, bool repair, long lsn = 0)
    {
        if (lsn == 0) lsn = BinaryPrimitives.ReadInt64LittleEndian(GetEntryMeta(vol, part).AsSpan(EntryHeader.OffLsn));
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
        // A repair is made durable before the indexes move to it (and before it is acknowledged); compaction's copies
        // need not be: the checkpoint that frees the old places makes the log durable first.
        var item = new EntryItem(buf, vol, EntryKind.Relocation, lsn, Id160.Zero, 0, durable: repair)
        {
            AfterWrite = w =>
            {
                var newEntry = w.DeviceOffset / BlockSize;
                ApplyRelocation(start, count, oldLogBlock, newEntry);
                if (repair) Damage.ClearRepaired(start, count, newEntry + 1 + EntryHeader.TableSectorsFor(count));
            },
        };
        _appender.Enqueue(item);
        return item.Done.Task;
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
        if ((span[RelocationFlagsOffset] & RelocationRepairFlag) != 0) Damage.ClearRepaired(h.FirstBlock, h.BlockCount, block + h.MetaSectors);
        return null;
    }

    /// <summary>Entries whose headers lived in a compacted segment can no longer be streamed.</summary>
    private void MarkCompacted(IReadOnlySet<int> segs)
    {
        if (segs.Count == 0) return;
        // One scan per volume from its newest entry down to the first in any of the segments (not one per segment:
        // under pressure a pass compacts many, and the index lock is held meanwhile).
        foreach (var v in _volumes.Values)
        {
            lock (v.IndexLock)
            {
                for (var l = v.Lsns.Count; l >= v.OldestStreamableLsn; l--)
                {
                    var seg = Compactor.SegmentOf(_layout, v.Lsns.BlockOf(l));
                    if (seg >= 0 && segs.Contains(seg)) { v.OldestStreamableLsn = l + 1; break; }
                }
            }
        }
        foreach (var seg in segs)
        {
            var first = _layout.SegmentOffset(seg) / BlockSize;
            _metaCache.Invalidate(first, first + _layout.SegmentSize / BlockSize);
        }
    }

    internal int OnCheckpointDurable(IReadOnlySet<int> reclaimed)
    {
        if (reclaimed.Count == 0) return 0;
        WaitForEarlierReads();
        foreach (var seg in reclaimed)
        {
            var first = _layout.SegmentOffset(seg) / BlockSize;
            _metaCache.Invalidate(first, first + _layout.SegmentSize / BlockSize);
        }
        var freed = _segments.FreeReclaimed(reclaimed);
        Interlocked.Add(ref _segmentsFreed, freed);
        // Appends waiting for room try again.
        if (freed > 0) _appender.SpaceFreed();
        return freed;
    }
}
