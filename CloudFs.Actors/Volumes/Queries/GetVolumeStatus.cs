// Query: how the volume actor sees its volume and how it recovered (operators and tests); answered with VolumeStatus.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record GetVolumeStatus(Id160 VolumeId) : IWithVolumeId, IVolumeProtocolMessage;
