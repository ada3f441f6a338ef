// The READ and WRITE payload bytes all NBD connections of a node may hold at once (cloudfs.nbd.in-flight-bytes):
// a connection takes its requests' bytes here too, and waits in line when the node is full. Lock-free while the
// bytes fit; the lock is taken only when someone waits.
namespace CloudFs.Host.Nbd;

internal sealed class NbdPayloadBudget
{
    private readonly long _capacity;
    private readonly LinkedList<Waiter> _waiters = new();
    private long _used;
    private int _waiting; // _waiters.Count, readable without the lock

    public NbdPayloadBudget(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
    }

    /// <summary>Bytes taken and not yet returned.</summary>
    public long InUse => Volatile.Read(ref _used);

    /// <summary>Connections waiting for bytes.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Takes <paramref name="bytes"/> if they fit now (or the node holds nothing: one request always proceeds) and nobody waits.</summary>
    public bool TryTake(long bytes)
    {
        if (Volatile.Read(ref _waiting) != 0) return false;
        if (TryAdd(bytes)) return true;
        // A waiter that came meanwhile may have been refused against the bytes this attempt held for a moment.
        if (Volatile.Read(ref _waiting) != 0) lock (_waiters) GrantLocked();
        return false;
    }

    /// <summary>Takes <paramref name="bytes"/>, waiting behind earlier waiters until they fit.</summary>
    public Task TakeAsync(long bytes, CancellationToken ct)
    {
        var waiter = new Waiter(bytes);
        lock (_waiters)
        {
            waiter.Node = _waiters.AddLast(waiter);
            _waiting++;
            GrantLocked();
        }
        if (waiter.Task.IsCompleted) return waiter.Task;
        waiter.Cancellation = ct.Register(static state =>
        {
            var (budget, w) = ((NbdPayloadBudget, Waiter))state!;
            budget.Cancel(w);
        }, (this, waiter));
        if (waiter.Task.IsCompleted) waiter.Cancellation.Unregister(); // granted before the registration existed
        return waiter.Task;
    }

    public void Return(long bytes)
    {
        if (bytes == 0) return;
        Interlocked.Add(ref _used, -bytes);
        if (Volatile.Read(ref _waiting) == 0) return;
        lock (_waiters) GrantLocked();
    }

    private bool TryAdd(long bytes)
    {
        var after = Interlocked.Add(ref _used, bytes);
        if (after <= _capacity || after == bytes) return true;
        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    /// <summary>Grants waiters in order while the first one fits (under the lock).</summary>
    private void GrantLocked()
    {
        while (_waiters.First is { } first && TryAdd(first.Value.Bytes))
        {
            _waiters.RemoveFirst();
            first.Value.Node = null;
            _waiting--;
            first.Value.Cancellation.Unregister(); // not Dispose: that would wait for a running Cancel, which waits for the lock
            first.Value.Grant();
        }
    }

    private void Cancel(Waiter waiter)
    {
        lock (_waiters)
        {
            if (waiter.Node is null) return; // granted meanwhile: the caller owns the bytes
            _waiters.Remove(waiter.Node);
            waiter.Node = null;
            _waiting--;
            // The one that left may have blocked smaller requests behind it.
            GrantLocked();
        }
        waiter.Cancel();
    }

    private sealed class Waiter(long bytes)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long Bytes { get; } = bytes;
        public LinkedListNode<Waiter>? Node { get; set; }
        public CancellationTokenRegistration Cancellation { get; set; }
        public Task Task => _done.Task;
        public void Grant() => _done.TrySetResult();
        public void Cancel() => _done.TrySetCanceled();
    }
}
