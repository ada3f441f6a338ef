// Reply to Map: the ranges in order, covering the asked range.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record MapResult(IReadOnlyList<MappedRange> Ranges) : IVolumeProtocolMessage;
