// The checkpoint bound: after a crash, recovery replays the log written since the capture of the newest durable
// checkpoint; LogStoreOptions.CheckpointBytes bounds that. The writer captures a checkpoint itself, right where it is,
// once half the bound was written since the last capture (so its slot has the other half to become durable), and
// waits before writing past the bound while a captured checkpoint is still being written. Counts every byte the
// writer appends (entries of volumes, compaction's relocations, resyncs, durable marks).
namespace CloudFs.BlockDevice.Log;

internal sealed class CheckpointBound(long bound)
{
    private readonly object _gate = new();
    private long _written;   // bytes appended since the store opened (the writer thread adds, others read)
    private long _captured;  // _written at the newest capture
    private long _durable;   // _written at the capture of the newest durable checkpoint (recovery starts there)
    private long _retryAt;   // after a declined capture (a resync being staged), the next try waits until here
    private bool _inFlight;  // captured, its slot not yet durable (nor failed)
    private bool _closed;
    private long _highWater;
    private long _waits;

    /// <summary>Bytes appended since the newest capture (what the next checkpoint will no longer replay).</summary>
    public long SinceCapture
    {
        get { lock (_gate) return _written - _captured; }
    }

    /// <summary>Bytes a crash now would replay (from the newest durable checkpoint's capture).</summary>
    public long SinceDurable
    {
        get { lock (_gate) return _written - _durable; }
    }

    /// <summary>The most a crash would have replayed at any moment since the store opened.</summary>
    public long HighWater
    {
        get { lock (_gate) return _highWater; }
    }

    /// <summary>How many times the writer waited at the bound for a checkpoint to become durable.</summary>
    public long Waits
    {
        get { lock (_gate) return _waits; }
    }

    /// <summary>Writer thread: whether to capture a checkpoint now (half the bound written since the last capture).</summary>
    public bool CaptureDue
    {
        get
        {
            lock (_gate)
                return !_inFlight && !_closed && bound != long.MaxValue && _written - _captured >= bound / 2 && _written >= _retryAt;
        }
    }

    /// <summary>Writer thread: <paramref name="bytes"/> more are in the log.</summary>
    public void Appended(long bytes)
    {
        lock (_gate)
        {
            _written += bytes;
            _highWater = Math.Max(_highWater, _written - _durable);
        }
    }

    /// <summary>Writer thread, at a checkpoint's barrier: from here the checkpoint covers everything written so far.</summary>
    public void Captured()
    {
        lock (_gate)
        {
            _captured = _written;
            _inFlight = true;
        }
    }

    /// <summary>Writer thread, at a checkpoint's barrier that could not capture: try again an eighth of the bound later.</summary>
    public void Declined()
    {
        lock (_gate) _retryAt = _written + Math.Max(1, bound / 8);
    }

    /// <summary>The captured checkpoint is durable (recovery starts from its capture now), or failed (it does not).</summary>
    public void Ended(bool durable)
    {
        lock (_gate)
        {
            if (!_inFlight) return;
            if (durable) _durable = _captured;
            _inFlight = false;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Whether appending <paramref name="bytes"/> now would pass the bound while a checkpoint is being written.</summary>
    public bool MustWait(long bytes)
    {
        lock (_gate) return Blocked(bytes);
    }

    /// <summary>
    /// Writer thread, before placing <paramref name="bytes"/>: while they would pass the bound and a captured checkpoint
    /// is being written, waits for it (it needs nothing from the writer: its barrier is behind it). With no checkpoint
    /// in flight there is nothing to wait for; a failed checkpoint's slot leaves the bound to the next one.
    /// </summary>
    public void WaitForRoom(long bytes)
    {
        lock (_gate)
        {
            if (!Blocked(bytes)) return;
            _waits++;
            while (Blocked(bytes)) Monitor.Wait(_gate);
        }
    }

    private bool Blocked(long bytes) => _inFlight && !_closed && _written - _durable + bytes > bound;

    /// <summary>The store is closing: nothing waits any more.</summary>
    public void Close()
    {
        lock (_gate)
        {
            _closed = true;
            Monitor.PulseAll(_gate);
        }
    }
}
