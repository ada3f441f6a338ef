// A command that makes the primary's VolumeActor change its chain's head between writes (a view change, a lifecycle
// entry, a step-down): the actor drains its writes in flight, runs the change in the engine as the chain's owner (its
// claim, docs/WRITE-PATH.md), answers, and takes the new head from the engine (no restart: the change was its own).
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Volumes.Commands;

public interface IHeadChange : IWithVolumeId
{
    /// <summary>Makes the change through the engine as the owner <paramref name="claim"/> of the chain (null where
    /// nobody claims it: the engine used without volume actors); the volume as it is then.</summary>
    Task<VolumeInfo> ApplyAsync(LogStore store, ChainClaim? claim);
}
