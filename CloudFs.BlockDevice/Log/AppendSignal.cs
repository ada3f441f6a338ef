// Wakes whoever waits for a volume's next entry (a replica's feeder), without an event subscription per wait: raised by
// the writer when it places an entry and by the completion thread when one is applied, in lsn order.
namespace CloudFs.BlockDevice.Log;

internal sealed class AppendSignal
{
    private TaskCompletionSource? _waiters;

    /// <summary>Something changed: every waiter wakes and looks again. One atomic exchange, no lock (it runs for every
    /// entry of every volume, mostly with nobody waiting).</summary>
    public void Raise() => Interlocked.Exchange(ref _waiters, null)?.TrySetResult();

    /// <summary>Completes at the next <see cref="Raise"/>. Callers check their condition after taking this task, so a
    /// raise between the check and the wait is not missed: the task taken is either still there for a later raise to
    /// complete, or was put there after an earlier raise's exchange, whose changes the caller then sees.</summary>
    public Task Next()
    {
        if (Volatile.Read(ref _waiters) is { } current) return current.Task;
        var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return (Interlocked.CompareExchange(ref _waiters, fresh, null) ?? fresh).Task;
    }
}
