// How a live apply paces its flushes when the follower knows when durability is wanted: entries are written as they
// arrive, but flushed only when asked (a FUA write or FLUSH on the primary waits for them) or when the oldest unflushed
// one is MaxDelay old; not at every pause of the stream (a replica would otherwise fdatasync hundreds of times a second).
namespace CloudFs.BlockDevice;

public sealed class LiveFlushes(TimeSpan maxDelay)
{
    private long _wanted;
    private TaskCompletionSource? _waiter;

    /// <summary>Unflushed entries are flushed at the latest this long after the first of them was admitted.</summary>
    public TimeSpan MaxDelay { get; } = maxDelay;

    /// <summary>The lsn (of the followed volume) that should be made durable as soon as it is admitted. Thread-safe.</summary>
    public void Request(long lsn)
    {
        var seen = Volatile.Read(ref _wanted);
        while (lsn > seen)
        {
            var was = Interlocked.CompareExchange(ref _wanted, lsn, seen);
            if (was == seen) break;
            seen = was;
        }
        Interlocked.Exchange(ref _waiter, null)?.TrySetResult();
    }

    internal long Wanted => Volatile.Read(ref _wanted);

    /// <summary>Completes at the next request (at once when <paramref name="flushedLsn"/> is already below the wanted lsn).</summary>
    internal Task NextRequest(long flushedLsn)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _waiter, tcs);
        // Checked after publishing the waiter: a request in between is not missed.
        if (Wanted > flushedLsn) tcs.TrySetResult();
        return tcs.Task;
    }
}
