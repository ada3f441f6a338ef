// Query: read a 512-aligned range as of the current head; answered with ReadResult.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record Read(Id160 VolumeId, long Offset, int Length) : IWithVolumeId, IVolumeProtocolMessage;
