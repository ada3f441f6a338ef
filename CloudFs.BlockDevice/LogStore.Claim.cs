// The chain claim (docs/WRITE-PATH.md): one owner per volume's chain on this host. The owner check lives here, once,
// and every door that changes a chain asks it under the volume's ChainLock (a HeldChain it passes).
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>
    /// Makes the caller the one owner of <paramref name="volume"/>'s chain on this host: from now on the chain changes
    /// only through the returned claim until it is released. Only the volume's writer may claim it
    /// (<see cref="NotPrimaryException"/>); a newer claim replaces an older one, which then refuses its appends.
    /// </summary>
    public ChainClaim ClaimChain(Id160 volume)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        using (vol.LockChain())
        {
            if (vol.Secret is null) throw new NotPrimaryException(volume);
            var claim = new ChainClaim(this, vol);
            Volatile.Write(ref vol.Claim, claim);
            return claim;
        }
    }

    internal void ReleaseClaim(ChainClaim claim)
    {
        var vol = claim.State;
        using (vol.LockChain())
            if (ReferenceEquals(vol.Claim, claim)) Volatile.Write(ref vol.Claim, null);
    }

    /// <summary>
    /// The owner's step-down (a stale primary that placement tells to follow another host): once everything it queued is
    /// in the log, this host stops being the volume's writer (its secret leaves memory and the key file) and the claim
    /// ends; the other host's entries then apply here. Only through the claim (<see cref="ChainClaimedException"/>).
    /// </summary>
    public async Task<VolumeInfo> StepDownAsync(Id160 volume, ChainClaim by, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(by);
        var vol = Volume(volume);
        using (var chain = vol.LockChain())
            if (ClaimRefusal(chain, by) is { } claimed) throw claimed;
        await FlushAsync(ct).ConfigureAwait(false);
        using (var chain = vol.LockChain())
        {
            if (ClaimRefusal(chain, by) is { } claimed) throw claimed;
            StepDownLocked(chain, "its writer stepped down (another host is the primary)");
            Volatile.Write(ref vol.Claim, null);
        }
        return Info(vol);
    }

    /// <summary>
    /// Under the volume's ChainLock (<paramref name="chain"/>): null when <paramref name="by"/> may change its chain (it
    /// is the volume's claim, or nobody claims it and <paramref name="by"/> is null); otherwise why not.
    /// </summary>
    internal ChainClaimedException? ClaimRefusal(HeldChain chain, ChainClaim? by)
    {
        var vol = chain.Volume;
        var held = vol.Claim;
        if (ReferenceEquals(held, by)) return null;
        if (held is null || by is not null)
            return new ChainClaimedException(vol.BaseId, $"volume {vol.BaseId}: this writer's claim on its chain was released or replaced; it no longer writes the volume");
        return new ChainClaimedException(vol.BaseId,
            $"volume {vol.BaseId} is written on this host ({HostId}, its primary) by its volume writer; its chain changes only through that writer, not from a stream, feed or resync");
    }
}
