// Data-plane messages of replication (binary VolumeMessageSerializer, never Hyperion): the primary's host agent feeds
// entry chunks to each follower, which acknowledges what it holds to the volume's actor on the primary.
using CloudFs.Actors.Serialization;
using CloudFs.Actors.Volumes;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

/// <summary>
/// A replica host holds the volume's entries up to <paramref name="Lsn"/> in its log (written, as a local write is
/// before a flush), and durably (flushed) up to <paramref name="DurableLsn"/>; routed through sharding to the
/// primary's VolumeActor. Sync writes wait for the first from a majority, flushes and FUA writes for the second.
/// </summary>
public sealed record ReplicaAck(Id160 VolumeId, Id160 Host, long Lsn, long DurableLsn) : IWithVolumeId, IVolumeProtocolMessage;

/// <summary>
/// A follower asks the primary's host agent to push the entries after <paramref name="AfterLsn"/>, in chunks of at most
/// about <paramref name="MaxBytes"/>, with at most <paramref name="Window"/> chunks unacknowledged. The sender (the
/// follower) receives <see cref="FeedChunk"/>s tagged with <paramref name="Feed"/>, its own id for this subscription.
/// </summary>
public sealed record FollowFrom(Id160 Volume, long AfterLsn, long Feed, int Window, int MaxBytes) : IVolumeProtocolMessage
{
    /// <summary>Chunks stay far below Akka's frame size (hocon: maximum-frame-size = 4 MiB).</summary>
    public const int DefaultMaxBytes = 64 << 10;
}

/// <summary>
/// Chunk <paramref name="Seq"/> (0, 1, ...) of a feed: whole entries, as in the log, the last one
/// <paramref name="LastLsn"/>; empty when nothing was appended for a while (it tells the follower the feed is alive).
/// </summary>
public sealed record FeedChunk(long Feed, long Seq, long LastLsn, long HeadLsn, ReadOnlyMemory<byte> Data) : IVolumeProtocolMessage;

/// <summary>The follower took chunk <paramref name="Seq"/> in: the feeder may send one more.</summary>
public sealed record FeedCredit(long Feed, long Seq) : IVolumeProtocolMessage;

/// <summary>The primary waits for <paramref name="Lsn"/> to be durable on a majority (a FUA write or a FLUSH): the
/// follower flushes as soon as it holds it, instead of at its next scheduled flush.</summary>
public sealed record FeedFlush(long Feed, long Lsn) : IVolumeProtocolMessage;

/// <summary>Local, from a volume's actor to its host's agent: tell the volume's followers that <paramref name="Lsn"/> must become durable.</summary>
public sealed record WantDurable(Id160 Volume, long Lsn);

/// <summary>The follower ends the feed (it stops or starts another one).</summary>
public sealed record FeedStop(long Feed) : IVolumeProtocolMessage;

/// <summary>The feeder cannot go on: <paramref name="Compacted"/> when the entries the follower needs were compacted away.</summary>
public sealed record FeedEnded(long Feed, bool Compacted, string Reason) : IVolumeProtocolMessage;

/// <summary>
/// A replica that cannot chain on (the primary compacted the history it needs) asks for the volume whole: a zero
/// <paramref name="Transfer"/> starts a transfer as of the primary's head, then each piece is asked for from the
/// previous one's NextBlock. Entries carry at most <paramref name="MaxEntryBlocks"/> blocks (the replica's segments
/// must hold them). Answered with <see cref="ResyncPiece"/> (or ControlFailed).
/// </summary>
public sealed record ReadResync(Id160 Volume, Id160 Transfer, long FromBlock, int MaxBytes, int MaxEntryBlocks) : IVolumeProtocolMessage;

/// <summary>One piece of a full resync: whole resync entries (the last piece ends with the commit), at most about 1 MiB.</summary>
public sealed record ResyncPiece(Id160 Transfer, long Lsn, long NextBlock, bool Complete, ReadOnlyMemory<byte> Data) : IVolumeProtocolMessage;
