// Free space under pressure: some free segments are kept for compaction's relocations (the writer enforces it), the
// engine starts compaction itself when free segments fall to the low-water mark or an append waits for room, one pass
// at a time and pass after pass while they help, and it tells the waiting appends when compaction can free nothing.
namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    private int _reserveSegments, _lowWaterSegments;
    // 0: no pass running; 1: a pass running; 2: a pass running and another one asked for.
    private int _passState;
    private Task _passes = Task.CompletedTask;
    private readonly CancellationTokenSource _stopPasses = new();
    private long _passCount, _passesSkipped, _segmentsCompacted, _bytesCopied, _segmentsFreed;

    /// <summary>How compaction and the appends that wait for it have done since the store opened (metrics).</summary>
    public CompactionStats CompactionStats => new(
        Interlocked.Read(ref _passCount), Interlocked.Read(ref _segmentsCompacted), Interlocked.Read(ref _bytesCopied),
        Interlocked.Read(ref _segmentsFreed), _appender.AppendsWaited, _appender.AppendsRefused, _appender.Waiting, _reserveSegments)
    { PassesSkipped = Interlocked.Read(ref _passesSkipped) };

    private void SetSpaceRules()
    {
        if (_options.CompactionReserve is < 0 or >= 1 || double.IsNaN(_options.CompactionReserve))
            throw new DeviceException($"the compaction reserve {_options.CompactionReserve} must be a fraction of the log in [0, 1)");
        if (_options.CompactionLowWater is < 0 or > 1 || double.IsNaN(_options.CompactionLowWater))
            throw new DeviceException($"the compaction low-water mark {_options.CompactionLowWater} must be a fraction of the log in [0, 1]");
        if (_options.SpaceWaitLimit < TimeSpan.Zero)
            throw new DeviceException($"the longest wait for space {_options.SpaceWaitLimit} must not be negative");
        _reserveSegments = (int)Math.Ceiling(_options.CompactionReserve * _layout.SegmentCount);
        _lowWaterSegments = (int)Math.Ceiling(_options.CompactionLowWater * _layout.SegmentCount);
    }

    /// <summary>Free space is short: the low-water mark is reached, or appends wait for room.</summary>
    private bool SpaceIsShort => _segments.FreeCount <= _lowWaterSegments || _appender.Waiting > 0;

    /// <summary>Writer thread (must not block): it took a segment, or an append started waiting for one.</summary>
    private void OnSpaceWanted()
    {
        if (SpaceIsShort) RequestCompaction();
    }

    /// <summary>Starts a compaction pass unless one runs; if one runs, asks it for another after it.</summary>
    private void RequestCompaction()
    {
        if (!_options.AutoCompaction || Volatile.Read(ref _disposed) != 0) return;
        while (true)
        {
            var state = Volatile.Read(ref _passState);
            if (state == 2) return;
            if (Interlocked.CompareExchange(ref _passState, state + 1, state) != state) continue;
            if (state == 0) _passes = Task.Run(RunPassesAsync);
            return;
        }
    }

    private async Task RunPassesAsync()
    {
        while (true)
        {
            // Asks from now on are for a pass after this one.
            Volatile.Write(ref _passState, 1);
            var helped = false;
            try
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var (r, scannedAt) = await CompactPassAsync(checkpoint: true, _stopPasses.Token).ConfigureAwait(false);
                helped = r.SegmentsFreed > 0;
                if (r.SegmentsCompacted > 0)
                    _options.Log?.Invoke($"compaction (free space short): {r.SegmentsCompacted} segment(s) compacted, {r.BytesCopied} bytes copied, " +
                        $"{r.SegmentsFreed} freed in {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms; {_segments.FreeCount} free");
                if (r.SegmentsCompacted == 0 && !helped && _appender.Waiting > 0)
                {
                    // Nothing it could free: live data (and what replicas still need) fills the log. The appends that
                    // were waiting when it looked fail now; later ones asked for a pass of their own.
                    _options.Log?.Invoke($"the log is full: compaction found nothing to free, so the writes waiting for room fail with LogFullException");
                    _appender.RefuseWaiting(scannedAt);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException && Volatile.Read(ref _disposed) != 0)
            {
                Volatile.Write(ref _passState, 0);
                return;
            }
            catch (Exception e)
            {
                _options.Log?.Invoke($"compaction failed ({e.Message}); the log stays valid and the next need for space tries again");
            }
            // Pass after pass while space is short and they free some; otherwise only if asked meanwhile.
            if (helped && SpaceIsShort && Volatile.Read(ref _disposed) == 0) continue;
            if (Interlocked.CompareExchange(ref _passState, 0, 1) == 1) return;
        }
    }

    /// <summary>Closing: no new pass starts, the running one stops at its next step.</summary>
    private async Task StopPassesAsync()
    {
        _stopPasses.Cancel();
        try { await _passes.ConfigureAwait(false); }
        catch (Exception e) { _options.Log?.Invoke($"compaction at close: {e.Message}"); }
    }
}
