// Query: the size of the volume as it was at Version (what the NBD export VOL@VERSION serves), from a node that holds
// the volume's chain; answered with VersionSizeResult. It also checks that the version can be read.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record VersionSize(Id160 VolumeId, Id160 Version) : IWithVolumeId, IVolumeProtocolMessage;
