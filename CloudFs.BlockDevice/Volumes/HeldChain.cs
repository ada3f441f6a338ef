// A volume's ChainLock, held (docs/ENGINE.md, "Locks"): the only way to take it is VolumeState.LockChain() in a using,
// which releases it at the end of the block. What must run under the lock takes the held value as a parameter, so a
// call without the lock does not compile; being a ref struct, it cannot outlive the block or cross an await.
namespace CloudFs.BlockDevice.Volumes;

internal readonly ref struct HeldChain
{
    private readonly object _lock;

    /// <summary>Called by <see cref="VolumeState.LockChain"/> once it holds <paramref name="held"/>.</summary>
    internal HeldChain(VolumeState volume, object held)
    {
        Volume = volume;
        _lock = held;
    }

    /// <summary>The volume whose chain lock this is.</summary>
    public VolumeState Volume { get; }

    public void Dispose() => Monitor.Exit(_lock);
}
