// Command to the primary's VolumeActor: record a new replica set with a view change (its own secret suffices);
// answered with VolumeAck (the view-change entry's lsn) or a VolumeFailure.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Volumes.Commands;

public sealed record ChangeReplicaSet(Id160 VolumeId, Id160[] Replicas) : IHeadChange, IVolumeProtocolMessage
{
    public Task<VolumeInfo> ApplyAsync(LogStore store, ChainClaim? claim) => store.Ownership.TakeOverAsync(VolumeId, [], Replicas, by: claim);
}
