// The one writer of the log: packs every entry queued while the previous write was in flight into ONE aligned write,
// satisfies all flush requests with ONE fdatasync, and completes entries strictly in log order. A failed write or
// fdatasync fails the requests it was for and every later one, for good: nothing is acknowledged that is not durable.
using System.Diagnostics;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

internal sealed class GroupCommitAppender : IDisposable
{
    private const int Page = AlignedBuffer.Alignment;
    private const int StagingSize = 8 << 20;
    /// <summary>How long a durable mark waits for the next batch to carry it before it is written alone.</summary>
    private static readonly TimeSpan MarkDelay = TimeSpan.FromMilliseconds(2);

    private readonly ILogDevice _device;
    private readonly DeviceHeader _layout;
    private readonly SegmentTable _segments;
    private readonly IAppendSink _sink;
    private readonly Action<string>? _log;
    private readonly Action<Exception> _faulted;
    private readonly object _gate = new();
    private List<LogRequest> _queue = new(), _batch = new();
    private readonly Thread _thread, _completer;
    private bool _stopping;
    private Exception? _fault;
    // The newest durable end the completer has synced (under _gate), and the newest the writer has placed a mark for.
    private LogPosition _markWanted, _markPlaced;
    // The batch item the writer is at: a failure fails it and the items after it (the ones before were handed on).
    private int _batchAt;

    // Writer-thread state. The staging buffer mirrors the device from _stageBase (4 KiB aligned): it always starts with
    // the partial page the last write ended in, so every write is whole aligned pages (O_DIRECT) and rewrites that page.
    private readonly AlignedBuffer _staging = new(StagingSize);
    private long _stageBase;
    private int _stageLen, _stageWritten;
    private int _segIndex;
    private ulong _segSeq, _nextSeq;
    private readonly CheckpointBound _checkpoints;

    // Room: the segments kept for compaction, and the ordinary entries waiting for compaction to free some.
    private readonly SpaceRules _space;
    private readonly SpaceWaiters _waiting;
    private bool _segFromReserve;
    private static readonly LogFullException NoRoom = new("no free segment outside the reserve");

    /// <param name="leaveSegment">Records of this segment's seq lie after <paramref name="start"/> (a torn tail):
    /// end the segment there and go on in a new one, so no later recovery mistakes them for this log's.</param>
    /// <param name="faulted">Told the first failure (the store reports it and stops taking writes).</param>
    public GroupCommitAppender(ILogDevice device, DeviceHeader layout, SegmentTable segments, IAppendSink sink, WriterPosition start, bool needSegmentHeader, bool leaveSegment,
        Action<string>? log, Action<Exception> faulted, CheckpointBound checkpoints, SpaceRules? space = null)
    {
        _device = device; _layout = layout; _segments = segments; _sink = sink; _log = log; _faulted = faulted;
        _checkpoints = checkpoints;
        _space = space ?? SpaceRules.None;
        _waiting = new SpaceWaiters(_space.MaxWait);
        _segIndex = start.Segment; _segSeq = start.Seq; _nextSeq = start.NextSeq;
        _stageBase = start.Offset & ~(long)(Page - 1);
        _stageLen = (int)(start.Offset - _stageBase);
        // Re-read the partial page before the append point: the first write rewrites it.
        if (_stageLen > 0) _device.Read(_staging.Span[..Page], _stageBase);
        _stageWritten = _stageLen;
        if (needSegmentHeader)
        {
            SegmentRecord.Header(layout.DeviceId, _segSeq, _segIndex).Encode(_staging.Span.Slice(_stageLen, SegmentRecord.Size));
            _stageLen += SegmentRecord.Size;
        }
        else if (leaveSegment && !SwitchSegment(reserved: 0))
            _log?.Invoke($"recovery: no free segment to leave segment {_segIndex} after its torn tail; continuing in it");
        _thread = new Thread(Run) { IsBackground = true, Name = "cloudfs-log-writer" };
        _thread.Start();
        _completer = new Thread(CompleteLoop) { IsBackground = true, Name = "cloudfs-log-completer" };
        _completer.Start();
    }

    /// <summary>Writer-thread counters for profiling (benchmarks print them).</summary>
    internal readonly AppenderStats Stats = new();

    /// <summary>Requests waiting for room now; entries that ever waited; entries that gave up waiting (LogFullException).</summary>
    public int Waiting => _waiting.Count;
    public long AppendsWaited => _waiting.Waited;
    public long AppendsRefused => _waiting.Refused;

    /// <summary>Segments were freed: the waiting entries try again.</summary>
    public void SpaceFreed()
    {
        lock (_gate) { _waiting.SignalFreed(); Monitor.Pulse(_gate); }
    }

    /// <summary>
    /// A compaction pass that scanned the log at <paramref name="stamp"/> (a Stopwatch timestamp taken on the writer
    /// thread, in a barrier) could free nothing: entries that were already waiting then fail.
    /// </summary>
    public void RefuseWaiting(long stamp)
    {
        lock (_gate) { _waiting.SignalRefuse(stamp); Monitor.Pulse(_gate); }
    }

    public void Enqueue(LogRequest r)
    {
        lock (_gate)
        {
            if (_stopping || Volatile.Read(ref _fault) is not null)
            {
                Fail(r, Volatile.Read(ref _fault) ?? new ObjectDisposedException(nameof(LogStore), "the log store is closed"));
                return;
            }
            _queue.Add(r);
            if (_queue.Count == 1) Monitor.Pulse(_gate);
        }
    }

    /// <summary>
    /// A flush that finds the log idle (nothing queued, waiting for room, being written, or being synced and completed:
    /// everything appended so far is on the device) syncs the device on the caller's thread and returns true; the
    /// writer and completion threads are not woken for it (at queue depth 1 they were two of a flush's three thread
    /// hand-offs). False when the log is busy: the caller queues a flush behind what is pending instead.
    /// </summary>
    public bool TryFlushIdle()
    {
        LogPosition upTo;
        lock (_gate)
        {
            if (_busy || _queue.Count > 0 || _waiting.Count > 0 || _stopping || Volatile.Read(ref _fault) is not null) return false;
            lock (_syncGate)
            {
                if (_toComplete.Count > 0 || _toFlush.Count > 0 || _needSync || _completing) return false;
                upTo = _writtenUpTo;
            }
            _idleFlushes++;
        }
        var synced = false;
        try
        {
            var t0 = Stopwatch.GetTimestamp();
            _device.Flush();
            Interlocked.Add(ref Stats.SyncTicks, Stopwatch.GetTimestamp() - t0);
            Interlocked.Increment(ref Stats.Syncs);
            synced = true;
        }
        catch (Exception ex)
        {
            throw SetFault(ex);
        }
        finally
        {
            // As the completion thread does after its sync: the durable mark rides with the next batch, or goes alone.
            lock (_gate)
            {
                if (synced && upTo > _markWanted) _markWanted = upTo;
                _idleFlushes--;
                Monitor.PulseAll(_gate);
            }
        }
        return true;
    }

    // The writer thread is working on a batch (under _gate): a flush then queues behind it.
    private bool _busy;
    // Flushes syncing on their callers' threads (under _gate): Stop waits for them before the device may close.
    private int _idleFlushes;

    private void Run()
    {
        while (true)
        {
            LogPosition mark;
            lock (_gate)
            {
                _busy = false;
                var markWaited = false;
                long now;
                while (true)
                {
                    now = Stopwatch.GetTimestamp();
                    if (_queue.Count > 0 || _waiting.Due(now)) break;
                    // A durable mark rides with the next batch; when none comes soon (or the writer stops), it goes alone.
                    if (_markWanted > _markPlaced && Volatile.Read(ref _fault) is null)
                    {
                        if (_stopping || markWaited) break;
                        var due = _waiting.MillisUntilDue(now);
                        var delay = (int)MarkDelay.TotalMilliseconds;
                        markWaited = !Monitor.Wait(_gate, due == Timeout.Infinite ? delay : Math.Min(delay, due));
                        continue;
                    }
                    if (_stopping) break;
                    Monitor.Wait(_gate, _waiting.MillisUntilDue(now));
                }
                var retry = _waiting.Due(now);
                if (_queue.Count == 0 && !retry && !(_markWanted > _markPlaced && Volatile.Read(ref _fault) is null))
                {
                    // Stopping: what still waits for room will not get it from this store.
                    foreach (var r in _waiting.TakeAll()) Fail(r, new ObjectDisposedException(nameof(LogStore), "the log store is closed"));
                    return;
                }
                (_queue, _batch) = (_batch, _queue);
                _busy = true;
                // What waits for room tries again first, in its order (space was freed, or its wait is over).
                if (retry) _batch.InsertRange(0, _waiting.TakeAll());
                Stats.Batches++;
                Stats.Requests += _batch.Count;
                mark = _markWanted;
            }
            _batchAt = 0;
            try
            {
                if (Volatile.Read(ref _fault) is { } fault) throw fault;
                if (mark > _markPlaced) PlaceMark(mark);
                if (_batch.Count > 0) ProcessBatch(_batch);
                else
                {
                    var none = false;
                    Commit(ref none, forceSync: false);
                }
            }
            catch (Exception ex)
            {
                // A device error leaves the log's tail unknown: refuse everything from now on. What was handed to the
                // completion thread is completed or failed there; the rest of the batch fails here.
                var fault = SetFault(ex);
                foreach (var e in _placed) Fail(e, fault);
                foreach (var f in _flushes) Fail(f, fault);
                for (var i = _batchAt; i < _batch.Count; i++) Fail(_batch[i], fault);
                foreach (var r in _waiting.TakeAll()) Fail(r, fault);
                _placed.Clear();
                _flushes.Clear();
            }
            _batch.Clear();
        }
    }

    private readonly List<EntryItem> _placed = new();
    private bool _commitNow, _syncPending;
    private readonly List<FlushItem> _flushes = new();

    private void ProcessBatch(List<LogRequest> batch)
    {
        ref var sync = ref _syncPending;
        sync = false;
        var now = Stopwatch.GetTimestamp();
        for (; _batchAt < batch.Count; _batchAt++)
        {
            var r = batch[_batchAt];
            // Behind a waiting entry, ordinary entries and flushes keep their order; compaction's entries and barriers go on.
            if (_waiting.Count > 0 && r is FlushItem or EntryItem { Kind: not EntryKind.Relocation }) { _waiting.Add(r, now); continue; }
            switch (r)
            {
                case EntryItem e:
                    if (e.IsTold) break;
                    var refused = _sink.Admit(e);
                    if (refused is not null) { e.Buffer.Dispose(); e.Fail(refused); break; }
                    var full = Place(e);
                    if (ReferenceEquals(full, NoRoom))
                    {
                        // Wait (without holding up the writer) for compaction to free a segment, unless that is over.
                        if (_waiting.GiveUpReason(e, now) is not { } why) { _waiting.Add(e, now); _space.Wanted(); break; }
                        _waiting.CountRefused();
                        full = new LogFullException($"the log is full: no free segment outside the {_space.ReserveSegments} kept for compaction, and {why}");
                    }
                    if (full is not null)
                    {
                        _sink.Rejected(e, full);
                        e.Buffer.Dispose();
                        e.Fail(full);
                        break;
                    }
                    _sink.Placed(e);
                    _placed.Add(e);
                    Stats.Entries++;
                    sync |= e.Durable;
                    // Half the checkpoint bound written since the last capture: capture one right here.
                    if (_checkpoints.CaptureDue && _sink.CheckpointNow() is { } checkpoint) RunBarrier(checkpoint, ref sync);
                    break;
                case FlushItem f:
                    _flushes.Add(f);
                    sync = true;
                    break;
                case BarrierItem b:
                    RunBarrier(b, ref sync);
                    break;
            }
        }
        Commit(ref sync, forceSync: false);
    }

    /// <summary>Makes everything before durable and applied, then runs the barrier with nothing moving.</summary>
    private void RunBarrier(BarrierItem b, ref bool sync)
    {
        try { Commit(ref sync, forceSync: true); }
        catch (Exception ex)
        {
            // The device failed: the barrier's owner (a checkpoint holding its gate) hears it too, then the writer stops.
            b.Done.TrySetException(ex);
            throw;
        }
        try
        {
            b.Run(new WriterPosition(_segIndex, _segSeq, _stageBase + _stageLen, _nextSeq));
            b.Done.TrySetResult();
        }
        catch (Exception ex) { b.Done.TrySetException(ex); }
    }

    /// <summary>
    /// Writes what is staged and hands the written entries (and flush requests) to the completion thread, which syncs
    /// if any of them asked for it, then applies and completes them in log order. The writer meanwhile packs and
    /// writes the next batch, so one group's fdatasync overlaps the next group's write.
    /// </summary>
    private void Commit(ref bool sync, bool forceSync)
    {
        WriteStaging();
        if (!sync && !forceSync && _flushes.Count == 0 && _placed.Count > 0 && CompleteHere()) return;
        lock (_syncGate)
        {
            _writtenUpTo = new LogPosition(_segSeq, _stageBase + _stageLen);
            _toComplete.AddRange(_placed);
            _toFlush.AddRange(_flushes);
            _needSync |= sync || forceSync;
            Monitor.PulseAll(_syncGate);
            // A barrier needs everything before it durable and applied, with nothing moving.
            if (forceSync)
                while (_toComplete.Count > 0 || _toFlush.Count > 0 || _needSync || _completing) Monitor.Wait(_syncGate);
        }
        sync = false;
        _placed.Clear();
        _flushes.Clear();
        if (Volatile.Read(ref _fault) is { } fault) throw fault;
    }

    /// <summary>
    /// A written group that needs no sync, while the completion thread has nothing of its own (nothing queued, syncing
    /// or completing): the writer applies and completes it itself, in log order, instead of waking that thread for it
    /// (one thread hand-off less per write at low queue depth). False when the completion thread must take it.
    /// </summary>
    private bool CompleteHere()
    {
        lock (_syncGate)
        {
            if (_toComplete.Count > 0 || _toFlush.Count > 0 || _needSync || _completing || Volatile.Read(ref _fault) is not null) return false;
            _writtenUpTo = new LogPosition(_segSeq, _stageBase + _stageLen);
        }
        CompleteGroup(_placed, lone: _placed.Count == 1 && NothingQueued());
        return true;
    }

    /// <summary>No request waits for the writer now (a racy look: it only chooses where a completion is told).</summary>
    private bool NothingQueued()
    {
        lock (_gate) return _queue.Count == 0;
    }

    /// <summary>
    /// Entries that are on the device (durable if asked): applied to their volumes in log order, then their requesters
    /// told. A requester with an <see cref="IAppendCompletion"/> is told here, on this thread, when its entry is
    /// <paramref name="lone"/> (alone in its group, and nothing else waits for this thread: a write at queue depth 1 is
    /// answered without waking a pool thread for it), and on the pool otherwise (the answers of a busy log go out in
    /// parallel while this thread goes on with the log: 1 MiB writes at queue depth 16 took 8 % more CPU per MiB when
    /// every lone entry was told here).
    /// </summary>
    private void CompleteGroup(List<EntryItem> group, bool lone)
    {
        foreach (var e in group)
        {
            try
            {
                _sink.Applied(e);
                e.AfterWrite?.Invoke(e);
                // Each entry told on the pool is its own work item, as a task continuation would run: the replies of a
                // group go out in parallel (one work item for the whole group measured dearer at queue depth 32: CPU
                // per request 34 against 32 us).
                if (e.Completion is null || lone) e.Succeed();
                else ThreadPool.UnsafeQueueUserWorkItem(e, preferLocal: false);
            }
            catch (Exception ex) { e.Fail(ex); }
            e.Buffer.Dispose();
        }
        group.Clear();
    }

    /// <summary>Records the first failure (sticky: every later request fails with it), reports it once, returns it.</summary>
    private Exception SetFault(Exception ex)
    {
        var fault = ex as DeviceException ?? new DeviceException($"the log writer of {_device.Path} failed: {ex.Message}", ex);
        if (Interlocked.CompareExchange(ref _fault, fault, null) is null) _faulted(fault);
        return Volatile.Read(ref _fault)!;
    }

    private readonly object _syncGate = new();
    // What the writer has written so far (set in Commit, under _syncGate): a sync started after it covers it.
    private LogPosition _writtenUpTo;
    private List<EntryItem> _toComplete = new(), _completing1 = new();
    private List<FlushItem> _toFlush = new(), _flushing1 = new();
    private bool _needSync, _completing, _syncStopping;

    private void CompleteLoop()
    {
        // Set when a sync failed here: every group after that one fails too (it chains onto entries never applied).
        Exception? failed = null;
        while (true)
        {
            bool needSync;
            LogPosition upTo;
            lock (_syncGate)
            {
                while (_toComplete.Count == 0 && _toFlush.Count == 0 && !_needSync && !_syncStopping) Monitor.Wait(_syncGate);
                if (_toComplete.Count == 0 && _toFlush.Count == 0 && !_needSync) return;
                (_toComplete, _completing1) = (_completing1, _toComplete);
                (_toFlush, _flushing1) = (_flushing1, _toFlush);
                needSync = _needSync;
                upTo = _writtenUpTo;
                _needSync = false;
                _completing = true;
            }
            try
            {
                if (failed is not null) throw failed;
                if (needSync)
                {
                    var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    _device.Flush();
                    Stats.SyncTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
                    Stats.Syncs++;
                    // Asked for before anything is acknowledged, so a writer that drains its queue still places it.
                    lock (_gate)
                    {
                        if (upTo > _markWanted) _markWanted = upTo;
                        Monitor.Pulse(_gate);
                    }
                }
                bool lone;
                lock (_syncGate) lone = _completing1.Count == 1 && _toComplete.Count == 0;
                CompleteGroup(_completing1, lone);
                foreach (var f in _flushing1) f.Done.TrySetResult();
            }
            catch (Exception ex)
            {
                failed = SetFault(ex);
                foreach (var e in _completing1) Fail(e, failed);
                foreach (var f in _flushing1) Fail(f, failed);
            }
            _completing1.Clear();
            _flushing1.Clear();
            lock (_syncGate)
            {
                _completing = false;
                Monitor.PulseAll(_syncGate);
            }
        }
    }

    /// <summary>Copies a sealed entry into the staging buffer, moving to the next segment when it does not fit.</summary>
    private Exception? Place(EntryItem e)
    {
        var size = e.Buffer.Length;
        if (size + 2 * SegmentRecord.Size > _layout.SegmentSize)
            return new InvalidRangeException($"an entry of {size} bytes does not fit a {_layout.SegmentSize}-byte segment");
        // Only compaction's relocations may take the reserved segments: they can always copy live data forward.
        var reserved = e.Kind == EntryKind.Relocation ? 0 : _space.ReserveSegments;
        if (_segFromReserve && reserved > 0)
        {
            // A segment opened from the reserve stays compaction's until the reserve is whole again.
            if (_segments.FreeCount <= reserved) return NoRoom;
            _segFromReserve = false;
        }
        if (MakeRoom(size, reserved) is { } full) return e.Kind == EntryKind.Relocation ? full : NoRoom;
        if (_stageLen + size > StagingSize) _commitNow = true;
        if (_commitNow) { _commitNow = false; Commit(ref _syncPending, forceSync: false); }
        if (_checkpoints.MustWait(size))
        {
            // Past the checkpoint bound the checkpoint being written must be durable first, or a crash would replay
            // more: write what is staged (its requesters need not wait), then hold this entry until it is.
            Commit(ref _syncPending, forceSync: false);
            _checkpoints.WaitForRoom(size);
        }
        e.DeviceOffset = _stageBase + _stageLen;
        EntryCodec.Seal(e.Buffer.Span, _segSeq);
        e.Buffer.Span.CopyTo(Reserve(size));
        _checkpoints.Appended(size);
        return null;
    }

    /// <summary>
    /// Places a durable mark: everything before <paramref name="durable"/> was synced. Best effort: a log with no
    /// segment left for it goes without (recovery then treats what follows the last mark as a possible torn tail).
    /// </summary>
    private void PlaceMark(LogPosition durable)
    {
        // A mark never takes a segment kept for compaction; without room it is given up (the next sync brings another).
        if (MakeRoom(DurableMark.Size, _space.ReserveSegments) is not null) { _markPlaced = durable; return; }
        new DurableMark(_layout.DeviceId, _segSeq, _segIndex, durable).Encode(Reserve(DurableMark.Size));
        _checkpoints.Appended(DurableMark.Size);
        _markPlaced = durable;
    }

    /// <summary>Moves to the next segment (end record, new header) when <paramref name="size"/> bytes do not fit this one.</summary>
    private Exception? MakeRoom(int size, int reserved)
    {
        var segEnd = _layout.SegmentOffset(_segIndex) + _layout.SegmentSize;
        // An entry never spans segments; the last 512 bytes of a segment are kept for its end record.
        if (_stageBase + _stageLen + size + SegmentRecord.Size > segEnd)
        {
            if (!SwitchSegment(reserved)) return new LogFullException($"the log is full: no free segment of {_layout.SegmentCount} for an entry of {size} bytes");
            _space.Wanted();
        }
        return null;
    }

    /// <summary>
    /// Ends this segment here with an end record and continues in a newly allocated one, leaving <paramref name="reserved"/>
    /// free segments alone; false when there is none to take.
    /// </summary>
    private bool SwitchSegment(int reserved)
    {
        var seq = _nextSeq;
        var fromReserve = _segments.FreeCount <= _space.ReserveSegments;
        var next = _segments.Allocate(_segIndex, seq, reserved);
        if (next < 0) return false;
        _nextSeq++;
        SegmentRecord.End(_layout.DeviceId, _segSeq, _segIndex, next, seq).Encode(Reserve(SegmentRecord.Size));
        WriteStaging();
        _segments.Set(_segIndex, SegmentState.Used, _segSeq);
        _segIndex = next;
        _segSeq = seq;
        _stageBase = _layout.SegmentOffset(next);
        _stageLen = _stageWritten = 0;
        SegmentRecord.Header(_layout.DeviceId, seq, next).Encode(Reserve(SegmentRecord.Size));
        _segFromReserve = fromReserve;
        return true;
    }

    private Span<byte> Reserve(int n)
    {
        var s = _staging.Span.Slice(_stageLen, n);
        _stageLen += n;
        return s;
    }

    private void WriteStaging()
    {
        if (_stageLen == _stageWritten) return;
        var end = (_stageLen + Page - 1) & ~(Page - 1);
        _staging.Span[_stageLen..end].Clear();
        var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        _device.Write(_staging.Span[..end], _stageBase);
        Stats.WriteTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
        Stats.Writes++;
        Stats.WriteBytes += end;
        var keep = _stageLen & ~(Page - 1);
        var tail = _stageLen - keep;
        if (keep > 0)
        {
            _staging.Span.Slice(keep, tail).CopyTo(_staging.Span);
            _stageBase += keep;
            _stageLen = tail;
        }
        _stageWritten = _stageLen;
    }

    private static void Fail(LogRequest r, Exception ex)
    {
        switch (r)
        {
            case EntryItem e: e.Buffer.Dispose(); e.Fail(ex); break;
            case FlushItem f: f.Done.TrySetException(ex); break;
            case BarrierItem b: b.Done.TrySetException(ex); break;
        }
    }

    /// <summary>Drains the queue (everything enqueued before is written) and stops the writer thread.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
            while (_idleFlushes > 0) Monitor.Wait(_gate);
        }
        _thread.Join();
        lock (_syncGate) { _syncStopping = true; Monitor.PulseAll(_syncGate); }
        _completer.Join();
    }

    public void Dispose()
    {
        Stop();
        ((IDisposable)_staging).Dispose();
    }
}

internal sealed class AppenderStats
{
    public long Batches, Requests, Writes, WriteBytes, WriteTicks, Syncs, SyncTicks;
    /// <summary>Entries placed in the log (a barrier rewrites the staged tail page, so bytes written do not say whether
    /// anything was appended; this does).</summary>
    public long Entries;

    public override string ToString()
    {
        static double Ms(long ticks) => ticks * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        return $"batches {Batches} (avg {(Batches == 0 ? 0 : Requests / (double)Batches):F1} requests), writes {Writes} (avg {(Writes == 0 ? 0 : WriteBytes / Writes / 1024)} KiB, {Ms(WriteTicks):F0} ms), syncs {Syncs} ({Ms(SyncTicks):F0} ms)";
    }
}
