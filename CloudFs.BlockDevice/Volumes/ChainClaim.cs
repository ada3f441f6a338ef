// The one owner of a volume's chain on this host (docs/WRITE-PATH.md): while a claim is held, the chain changes only
// through it. The volume's actor takes it when it recovers as the writer and releases it when it stops.
namespace CloudFs.BlockDevice.Volumes;

/// <summary>
/// A claim on one volume's chain, from <see cref="Ownership.ClaimChain"/>. Its holder appends through it; the engine
/// refuses every other change that would extend, rewind or replace the chain (a stream or feed entry, a resync over the
/// held copy, a fork split, a take-over not made through it) with <see cref="ChainClaimedException"/>. A claim that was
/// released or replaced by a newer one refuses its own appends too.
/// </summary>
public sealed class ChainClaim
{
    private readonly LogStore _store;

    internal ChainClaim(LogStore store, VolumeState volume)
    {
        _store = store;
        State = volume;
    }

    internal VolumeState State { get; }

    public Id160 Volume => State.BaseId;

    /// <summary>True while this is the volume's claim (not released, not replaced, the volume not replaced by a resync).</summary>
    public bool IsHeld => ReferenceEquals(Volatile.Read(ref State.Claim), this);

    /// <summary>As <see cref="LogStore.AppendDataAsync"/>, as the volume's owner.</summary>
    public ValueTask<AppendResult> AppendDataAsync(long expectedLsn, long offset, ReadOnlyMemory<byte> data, bool durable) =>
        _store.AppendData(State, this, expectedLsn, offset, data, durable);

    /// <summary>As <see cref="LogStore.AppendZeroAsync"/>, as the volume's owner.</summary>
    public ValueTask<AppendResult> AppendZeroAsync(long expectedLsn, long offset, long length, bool durable) =>
        _store.AppendZero(State, this, expectedLsn, offset, length, durable);

    /// <summary>As <see cref="AppendDataAsync"/>; <paramref name="completion"/> is told the outcome on the log's thread
    /// (it must not block). Throws, and tells nothing, when the entry is refused before it takes an lsn.</summary>
    public void AppendData(long expectedLsn, long offset, ReadOnlyMemory<byte> data, bool durable, IAppendCompletion completion) =>
        _store.AppendData(State, this, expectedLsn, offset, data, durable, completion);

    /// <summary>As <see cref="AppendZeroAsync"/>, told as <see cref="AppendData(long, long, ReadOnlyMemory{byte}, bool, IAppendCompletion)"/> is.</summary>
    public void AppendZero(long expectedLsn, long offset, long length, bool durable, IAppendCompletion completion) =>
        _store.AppendZero(State, this, expectedLsn, offset, length, durable, completion);

    /// <summary>Gives the chain up (idempotent): nothing is appended through this claim any more.</summary>
    public void Release() => _store.Ownership.ReleaseClaim(this);
}
