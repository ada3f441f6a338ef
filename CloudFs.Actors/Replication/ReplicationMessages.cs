// Data-plane messages of replication (binary VolumeMessageSerializer, never Hyperion): a follower pulls entry chunks
// from the primary's host agent, and acknowledges what it made durable to the volume's actor on the primary.
using CloudFs.Actors.Serialization;
using CloudFs.Actors.Volumes;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

/// <summary>The entries after <paramref name="AfterLsn"/>, at most about <paramref name="MaxBytes"/>; when there are none
/// yet, the primary waits up to <paramref name="WaitMs"/> for the next append (long poll). Answered with <see cref="EntryChunk"/>.</summary>
public sealed record PullEntries(Id160 Volume, long AfterLsn, int MaxBytes, int WaitMs) : IVolumeProtocolMessage
{
    /// <summary>Chunks stay far below Akka's frame size (hocon: maximum-frame-size = 4 MiB).</summary>
    public const int DefaultMaxBytes = 1 << 20;
}

/// <summary>Whole entries, as in the log; empty when nothing newer arrived within the wait.</summary>
public sealed record EntryChunk(long LastLsn, long HeadLsn, ReadOnlyMemory<byte> Data) : IVolumeProtocolMessage;

/// <summary>A replica host holds the volume durably up to <paramref name="Lsn"/>; routed through sharding to the primary's VolumeActor.</summary>
public sealed record ReplicaAck(Id160 VolumeId, Id160 Host, long Lsn) : IWithVolumeId, IVolumeProtocolMessage;

/// <summary>
/// A replica that cannot chain on (the primary compacted the history it needs) asks for the volume whole: a zero
/// <paramref name="Transfer"/> starts a transfer as of the primary's head, then each piece is asked for from the
/// previous one's NextBlock. Entries carry at most <paramref name="MaxEntryBlocks"/> blocks (the replica's segments
/// must hold them). Answered with <see cref="ResyncPiece"/> (or ControlFailed).
/// </summary>
public sealed record ReadResync(Id160 Volume, Id160 Transfer, long FromBlock, int MaxBytes, int MaxEntryBlocks) : IVolumeProtocolMessage;

/// <summary>One piece of a full resync: whole resync entries (the last piece ends with the commit), at most about 1 MiB.</summary>
public sealed record ResyncPiece(Id160 Transfer, long Lsn, long NextBlock, bool Complete, ReadOnlyMemory<byte> Data) : IVolumeProtocolMessage;
