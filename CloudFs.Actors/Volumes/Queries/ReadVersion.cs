// Query: read a 512-aligned range of the volume as it was at Version (the NBD export VOL@VERSION), from a node that
// holds the volume's chain; answered with ReadResult. Length 0 only checks that the version can be read.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record ReadVersion(Id160 VolumeId, Id160 Version, long Offset, int Length) : IWithVolumeId, IVolumeProtocolMessage;
