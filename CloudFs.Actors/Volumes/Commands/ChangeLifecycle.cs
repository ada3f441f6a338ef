// Command to the primary's VolumeActor: `cloudfs rm`, `trash restore` or `resize` as an entry in the volume's chain
// (docs/FORMAT.md, "Lifecycle"); answered with VolumeAck (the entry's lsn) or a VolumeFailure.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Volumes.Commands;

public enum LifecycleChange : byte
{
    Trash = 1,
    Restore = 2,
    Resize = 3,
}

/// <param name="SizeBytes">Resize: the new size (0 otherwise).</param>
/// <param name="AllowShrink">Resize: a smaller size is allowed (it drops what lies beyond).</param>
public sealed record ChangeLifecycle(Id160 VolumeId, LifecycleChange Change, long SizeBytes = 0, bool AllowShrink = false)
    : IHeadChange, IVolumeProtocolMessage
{
    public Task<VolumeInfo> ApplyAsync(LogStore store, ChainClaim? claim) => Change switch
    {
        LifecycleChange.Trash => store.TrashVolumeAsync(VolumeId, by: claim),
        LifecycleChange.Restore => store.RestoreVolumeAsync(VolumeId, by: claim),
        LifecycleChange.Resize => store.ResizeVolumeAsync(VolumeId, SizeBytes, AllowShrink, by: claim),
        _ => throw new CloudFsException($"unknown lifecycle change {(int)Change}"),
    };
}
