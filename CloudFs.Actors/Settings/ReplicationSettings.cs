// cloudfs.replication { }: the feed port and how replicas follow their primary.
namespace CloudFs.Actors.Settings;

/// <param name="FeedPort">The port a primary serves feeds on; 0 picks a free one.</param>
/// <param name="AskTimeout">A replica's requests to the primary's host agent (and its feed connection) time out after this long.</param>
/// <param name="PollWait">A feeder with no new entry for this long sends an empty chunk.</param>
/// <param name="RetryDelay">Pause before a replica retries after an error.</param>
/// <param name="ChunkBytes">Most bytes of entries one chunk of a feed carries (at least one entry).</param>
public sealed record ReplicationSettings(int FeedPort, TimeSpan AskTimeout, TimeSpan PollWait, TimeSpan RetryDelay, int ChunkBytes)
{
    /// <summary>Largest cloudfs.replication.chunk: a chunk is one socket write and one buffer on the primary.</summary>
    public const int MaxChunkBytes = 2 << 20;

    public static ReplicationSettings Read(SettingsReader r) => new(
        r.Port("cloudfs.replication.feed-port"),
        r.Duration("cloudfs.replication.ask-timeout"),
        r.Duration("cloudfs.replication.poll-wait"),
        r.Duration("cloudfs.replication.retry-delay"),
        (int)r.Bytes("cloudfs.replication.chunk", min: 1, max: MaxChunkBytes));
}
