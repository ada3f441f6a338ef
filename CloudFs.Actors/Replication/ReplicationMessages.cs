// Data-plane messages of replication (binary VolumeMessageSerializer, never Hyperion). The feed of entries itself and
// the replicas' acknowledgements travel over the feed's own connection (FeedWire); the primary's feeder hands each
// acknowledgement to the volume's actor as a ReplicaAck.
using CloudFs.Actors.Serialization;
using CloudFs.Actors.Volumes;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

/// <summary>
/// A replica host holds the volume's entries up to <paramref name="Lsn"/> in its log (written, as a local write is
/// before a flush), and durably (flushed) up to <paramref name="DurableLsn"/>, as acknowledged on the primary's feed
/// connection numbered <paramref name="Feed"/> (never beyond what that connection carried); routed through sharding to
/// the primary's VolumeActor. Sync writes wait for the first from a majority, flushes and FUA writes for the second.
/// </summary>
public sealed record ReplicaAck(Id160 VolumeId, Id160 Host, long Feed, long Lsn, long DurableLsn) : IWithVolumeId, IVolumeProtocolMessage;

/// <summary>The feed connection <paramref name="Feed"/> of a replica host ended: what it acknowledged no longer counts.</summary>
public sealed record ReplicaFeedEnded(Id160 VolumeId, Id160 Host, long Feed) : IWithVolumeId, IVolumeProtocolMessage;

/// <summary>Local, from a volume's actor to its host's agent: tell the volume's followers that <paramref name="Lsn"/> must become durable.</summary>
public sealed record WantDurable(Id160 Volume, long Lsn);

/// <summary>Local, from the feed port to the host's agent: a replica's follower connected and said hello (over TLS, as
/// the host its certificate names); the agent starts a feeder that owns <paramref name="Connection"/>.</summary>
internal sealed record ServeFeed(FeedWire.Hello Hello, FeedConnection Connection);

/// <summary>
/// A replica that cannot chain on (the primary compacted the history it needs) asks for the volume whole: a zero
/// <paramref name="Transfer"/> starts a transfer as of the primary's head, then each piece is asked for from the
/// previous one's NextBlock. Entries carry at most <paramref name="MaxEntryBlocks"/> blocks (the replica's segments
/// must hold them). Answered with <see cref="ResyncPiece"/> (or ControlFailed).
/// </summary>
public sealed record ReadResync(Id160 Volume, Id160 Transfer, long FromBlock, int MaxBytes, int MaxEntryBlocks) : IVolumeProtocolMessage;

/// <summary>One piece of a full resync: whole resync entries (the last piece ends with the commit), at most about 1 MiB.</summary>
public sealed record ResyncPiece(Id160 Transfer, long Lsn, long NextBlock, bool Complete, ReadOnlyMemory<byte> Data) : IVolumeProtocolMessage;
