// Wakes whoever waits for a volume's next entry (a replica's feeder), without an event subscription per wait: raised by
// the writer when it places an entry and by the completion thread when one is applied, in lsn order.
namespace CloudFs.BlockDevice.Log;

internal sealed class AppendSignal
{
    private readonly object _gate = new();
    private TaskCompletionSource? _waiters;

    /// <summary>Something changed: every waiter wakes and looks again.</summary>
    public void Raise()
    {
        TaskCompletionSource? waiters;
        lock (_gate)
        {
            waiters = _waiters;
            _waiters = null;
        }
        waiters?.TrySetResult();
    }

    /// <summary>Completes at the next <see cref="Raise"/>. Callers check their condition after taking this task, so a
    /// raise between the check and the wait is not missed.</summary>
    public Task Next()
    {
        lock (_gate) return (_waiters ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
    }
}
