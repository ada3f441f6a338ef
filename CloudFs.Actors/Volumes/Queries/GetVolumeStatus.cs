// Query: how the volume actor sees its volume and how it recovered (operators and tests); answered with VolumeStatus.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record GetVolumeStatus(Id160 VolumeId) : IWithVolumeId, IVolumeProtocolMessage;

/// <param name="RecoveredFromHead">Recovery started from the engine's head (the snapshot store), not from lsn 1.</param>
/// <param name="ReplayedHeaders">Entry headers replayed during recovery (0 when the head was current).</param>
public sealed record VolumeStatus(long Lsn, bool Exists, bool RecoveredFromHead, long ReplayedHeaders) : IVolumeProtocolMessage;
