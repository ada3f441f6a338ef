// Reply to VersionSize: the volume's size in bytes at that version.
using CloudFs.Actors.Serialization;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record VersionSizeResult(long SizeBytes) : IVolumeProtocolMessage;
