// Query: allocated ranges and holes over a range; answered with MapResult.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record Map(Id160 VolumeId, long Offset, long Length) : IWithVolumeId, IVolumeProtocolMessage;
