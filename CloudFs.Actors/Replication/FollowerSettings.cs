// How a follower paces itself (cloudfs.replication { } in hocon), with the node's counters and certificates.
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;

namespace CloudFs.Actors.Replication;

public sealed record FollowerSettings(TimeSpan AskTimeout, TimeSpan PollWait, TimeSpan RetryDelay, int ChunkBytes)
{
    /// <summary>Where the node's feeders and followers count what they move (its metrics).</summary>
    public ReplicationCounters Counters { get; init; } = new();

    /// <summary>Where this host's followers say how far they are (its agent reports it to placement).</summary>
    public ReplicaSyncs Syncs { get; init; } = new();

    /// <summary>The node's certificates (--tls): feeds are then mutual TLS, and only the primary's host is followed. Null: plain.</summary>
    public ClusterTls? Tls { get; init; }

    /// <summary>The follower's part of cloudfs.replication { }.</summary>
    public static FollowerSettings From(ReplicationSettings replication) =>
        new(replication.AskTimeout, replication.PollWait, replication.RetryDelay, replication.ChunkBytes);
}
