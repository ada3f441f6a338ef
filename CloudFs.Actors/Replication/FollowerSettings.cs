// How a follower paces itself (cloudfs.replication { } in hocon).
using CloudFs.Actors.Security;

namespace CloudFs.Actors.Replication;

public sealed record FollowerSettings(TimeSpan AskTimeout, TimeSpan PollWait, TimeSpan RetryDelay, int ChunkBytes)
{
    /// <summary>Where the node's feeders and followers count what they move (its metrics).</summary>
    public ReplicationCounters Counters { get; init; } = new();

    /// <summary>The node's certificates (--tls): feeds are then mutual TLS, and only the primary's host is followed. Null: plain.</summary>
    public ClusterTls? Tls { get; init; }

    /// <summary>Most bytes of entries in one chunk of a feed, unless configured (cloudfs.replication.chunk).</summary>
    public const int DefaultChunkBytes = 64 << 10;

    public static readonly FollowerSettings Default = new(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(500), DefaultChunkBytes);
}
