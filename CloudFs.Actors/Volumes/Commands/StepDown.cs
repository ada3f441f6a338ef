// Command to the VolumeActor of a stale primary on this host (HostAgent, when placement says another host is the
// primary and this host must follow it): the actor drains its writes in flight and gives its chain up through the
// engine (LogStore.Ownership.StepDownAsync: its secret and claim go), so the follower's entries meet no writer here.
// Local only: the host agent tells it to the actor registered in LocalVolumeWriters, or through this host's shard
// when none is (the actor starts, claims the chain as it recovers, and then steps down).
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Volumes.Commands;

public sealed record StepDown(Id160 VolumeId) : IHeadChange
{
    public Task<VolumeInfo> ApplyAsync(LogStore store, ChainClaim? claim) =>
        claim is null ? Task.FromException<VolumeInfo>(new NotPrimaryException(VolumeId)) : store.Ownership.StepDownAsync(VolumeId, claim);
}
