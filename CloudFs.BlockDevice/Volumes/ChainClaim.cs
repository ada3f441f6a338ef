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

    /// <summary>Gives the chain up (idempotent): nothing is appended through this claim any more.</summary>
    public void Release() => _store.Ownership.ReleaseClaim(this);
}
