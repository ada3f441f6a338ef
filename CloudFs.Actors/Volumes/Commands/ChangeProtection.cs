// Command to the primary's VolumeActor: `cloudfs protect VERSION` / `unprotect VERSION` as a Protect entry in the
// volume's chain (docs/FORMAT.md, "Protected versions"); answered with VolumeAck or a VolumeFailure.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Volumes.Commands;

/// <param name="Version">A version of the volume's own chain.</param>
/// <param name="Protect">True: protect it; false: end its protection.</param>
public sealed record ChangeProtection(Id160 VolumeId, Id160 Version, bool Protect) : IHeadChange, IVolumeProtocolMessage
{
    public Task<VolumeInfo> ApplyAsync(LogStore store, ChainClaim? claim) => store.ProtectVersionAsync(VolumeId, Version, Protect, by: claim);
}
