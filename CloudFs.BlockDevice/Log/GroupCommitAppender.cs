// The one writer of the log: packs every entry queued while the previous write was in flight into ONE aligned write,
// satisfies all flush requests with ONE fdatasync, and completes entries strictly in log order. A failed write or
// fdatasync fails the requests it was for and every later one, for good: nothing is acknowledged that is not durable.
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

internal sealed class GroupCommitAppender : IDisposable
{
    private const int Page = AlignedBuffer.Alignment;
    private const int StagingSize = 8 << 20;

    private readonly ILogDevice _device;
    private readonly DeviceHeader _layout;
    private readonly SegmentTable _segments;
    private readonly IAppendSink _sink;
    private readonly Action<Exception> _faulted;
    private readonly object _gate = new();
    private List<LogRequest> _queue = new(), _batch = new();
    private readonly Thread _thread, _completer;
    private bool _stopping;
    private Exception? _fault;
    // The batch item the writer is at: a failure fails it and the items after it (the ones before were handed on).
    private int _batchAt;

    // Writer-thread state. The staging buffer mirrors the device from _stageBase (4 KiB aligned): it always starts with
    // the partial page the last write ended in, so every write is whole aligned pages (O_DIRECT) and rewrites that page.
    private readonly AlignedBuffer _staging = new(StagingSize);
    private long _stageBase;
    private int _stageLen, _stageWritten;
    private int _segIndex;
    private ulong _segSeq, _nextSeq;
    private long _bytesAppended;

    /// <param name="faulted">Told the first failure (the store reports it and stops taking writes).</param>
    public GroupCommitAppender(ILogDevice device, DeviceHeader layout, SegmentTable segments, IAppendSink sink, WriterPosition start, bool needSegmentHeader, Action<Exception> faulted)
    {
        _device = device; _layout = layout; _segments = segments; _sink = sink; _faulted = faulted;
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
        _thread = new Thread(Run) { IsBackground = true, Name = "cloudfs-log-writer" };
        _thread.Start();
        _completer = new Thread(CompleteLoop) { IsBackground = true, Name = "cloudfs-log-completer" };
        _completer.Start();
    }

    /// <summary>Bytes of entries appended since the store opened (the checkpoint trigger reads it).</summary>
    public long BytesAppended => Interlocked.Read(ref _bytesAppended);

    /// <summary>Writer-thread counters for profiling (benchmarks print them).</summary>
    internal readonly AppenderStats Stats = new();

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

    private void Run()
    {
        while (true)
        {
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stopping) Monitor.Wait(_gate);
                if (_queue.Count == 0) return;
                (_queue, _batch) = (_batch, _queue);
                Stats.Batches++;
                Stats.Requests += _batch.Count;
            }
            _batchAt = 0;
            try
            {
                if (Volatile.Read(ref _fault) is { } fault) throw fault;
                ProcessBatch(_batch);
            }
            catch (Exception ex)
            {
                // A device error leaves the log's tail unknown: refuse everything from now on. What was handed to the
                // completion thread is completed or failed there; the rest of the batch fails here.
                var fault = SetFault(ex);
                foreach (var e in _placed) Fail(e, fault);
                foreach (var f in _flushes) Fail(f, fault);
                for (var i = _batchAt; i < _batch.Count; i++) Fail(_batch[i], fault);
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
        for (; _batchAt < batch.Count; _batchAt++)
        {
            switch (batch[_batchAt])
            {
                case EntryItem e:
                    if (e.Done.Task.IsCompleted) break;
                    var refused = _sink.Admit(e);
                    if (refused is not null) { e.Buffer.Dispose(); e.Done.TrySetException(refused); break; }
                    if (Place(e) is { } full)
                    {
                        _sink.Rejected(e, full);
                        e.Buffer.Dispose();
                        e.Done.TrySetException(full);
                        break;
                    }
                    _sink.Placed(e);
                    _placed.Add(e);
                    sync |= e.Durable;
                    break;
                case FlushItem f:
                    _flushes.Add(f);
                    sync = true;
                    break;
                case BarrierItem b:
                    Commit(ref sync, forceSync: true);
                    try
                    {
                        b.Run(new WriterPosition(_segIndex, _segSeq, _stageBase + _stageLen, _nextSeq));
                        b.Done.TrySetResult();
                    }
                    catch (Exception ex) { b.Done.TrySetException(ex); }
                    break;
            }
        }
        Commit(ref sync, forceSync: false);
    }

    /// <summary>
    /// Writes what is staged and hands the written entries (and flush requests) to the completion thread, which syncs
    /// if any of them asked for it, then applies and completes them in log order. The writer meanwhile packs and
    /// writes the next batch, so one group's fdatasync overlaps the next group's write.
    /// </summary>
    private void Commit(ref bool sync, bool forceSync)
    {
        WriteStaging();
        lock (_syncGate)
        {
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

    /// <summary>Records the first failure (sticky: every later request fails with it), reports it once, returns it.</summary>
    private Exception SetFault(Exception ex)
    {
        var fault = ex as DeviceException ?? new DeviceException($"the log writer of {_device.Path} failed: {ex.Message}", ex);
        if (Interlocked.CompareExchange(ref _fault, fault, null) is null) _faulted(fault);
        return Volatile.Read(ref _fault)!;
    }

    private readonly object _syncGate = new();
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
            lock (_syncGate)
            {
                while (_toComplete.Count == 0 && _toFlush.Count == 0 && !_needSync && !_syncStopping) Monitor.Wait(_syncGate);
                if (_toComplete.Count == 0 && _toFlush.Count == 0 && !_needSync) return;
                (_toComplete, _completing1) = (_completing1, _toComplete);
                (_toFlush, _flushing1) = (_flushing1, _toFlush);
                needSync = _needSync;
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
                }
                foreach (var e in _completing1)
                {
                    try
                    {
                        _sink.Applied(e);
                        e.AfterWrite?.Invoke(e);
                        e.Done.TrySetResult(new AppendResult(e.Lsn, e.Version));
                    }
                    catch (Exception ex) { e.Done.TrySetException(ex); }
                    e.Buffer.Dispose();
                }
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
        var segEnd = _layout.SegmentOffset(_segIndex) + _layout.SegmentSize;
        // An entry never spans segments; the last 512 bytes of a segment are kept for its end record.
        if (_stageBase + _stageLen + size + SegmentRecord.Size > segEnd)
        {
            var seq = _nextSeq;
            var next = _segments.Allocate(_segIndex, seq);
            if (next < 0) return new LogFullException($"the log is full: no free segment of {_layout.SegmentCount} for an entry of {size} bytes");
            _nextSeq++;
            SegmentRecord.End(_layout.DeviceId, _segSeq, _segIndex, next, seq).Encode(Reserve(SegmentRecord.Size));
            WriteStaging();
            _segments.Set(_segIndex, SegmentState.Used, _segSeq);
            _segIndex = next;
            _segSeq = seq;
            _stageBase = _layout.SegmentOffset(next);
            _stageLen = _stageWritten = 0;
            SegmentRecord.Header(_layout.DeviceId, seq, next).Encode(Reserve(SegmentRecord.Size));
        }
        if (_stageLen + size > StagingSize) _commitNow = true;
        if (_commitNow) { _commitNow = false; Commit(ref _syncPending, forceSync: false); }
        e.DeviceOffset = _stageBase + _stageLen;
        EntryCodec.Seal(e.Buffer.Span, _segSeq);
        e.Buffer.Span.CopyTo(Reserve(size));
        Interlocked.Add(ref _bytesAppended, size);
        return null;
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
            case EntryItem e: e.Buffer.Dispose(); e.Done.TrySetException(ex); break;
            case FlushItem f: f.Done.TrySetException(ex); break;
            case BarrierItem b: b.Done.TrySetException(ex); break;
        }
    }

    /// <summary>Drains the queue (everything enqueued before is written) and stops the writer thread.</summary>
    public void Stop()
    {
        lock (_gate) { _stopping = true; Monitor.Pulse(_gate); }
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

    public override string ToString()
    {
        static double Ms(long ticks) => ticks * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        return $"batches {Batches} (avg {(Batches == 0 ? 0 : Requests / (double)Batches):F1} requests), writes {Writes} (avg {(Writes == 0 ? 0 : WriteBytes / Writes / 1024)} KiB, {Ms(WriteTicks):F0} ms), syncs {Syncs} ({Ms(SyncTicks):F0} ms)";
    }
}
