// Reply to GetVolumeStatus: the volume actor's view of its volume and of its own recovery.
using CloudFs.Actors.Serialization;

namespace CloudFs.Actors.Volumes.Queries;

/// <param name="RecoveredFromHead">Recovery started from the engine's head (the snapshot store), not from lsn 1.</param>
/// <param name="ReplayedHeaders">Entry headers replayed during recovery (0 when the head was current).</param>
public sealed record VolumeStatus(long Lsn, bool Exists, bool RecoveredFromHead, long ReplayedHeaders) : IVolumeProtocolMessage;
