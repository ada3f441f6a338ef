// What a node's replication moved, for its metrics: feeds it served as a primary, acknowledgements it sent as a
// replica, and requests its gateway asked again of a primary that was slow to answer. One instance per node (shared
// by its host agent, feeders, followers and gateway); read at each scrape.
namespace CloudFs.Actors.Replication;

public sealed class ReplicationCounters
{
    private long _chunks, _entries, _bytes, _received, _acks, _repeats;

    /// <summary>Feed chunks this node sent as a primary (keepalives not counted).</summary>
    public long FeedChunks => Volatile.Read(ref _chunks);
    /// <summary>Entries in those chunks.</summary>
    public long FeedEntries => Volatile.Read(ref _entries);
    /// <summary>Bytes of entries in those chunks.</summary>
    public long FeedBytes => Volatile.Read(ref _bytes);
    /// <summary>Feed chunks with entries this node received as a replica.</summary>
    public long ChunksReceived => Volatile.Read(ref _received);
    /// <summary>Acknowledgements (written and durable lsns) this node sent to primaries as a replica.</summary>
    public long AcksSent => Volatile.Read(ref _acks);
    /// <summary>Volume requests this node's gateway sent again after no answer within the attempt timeout (a primary
    /// that is slow, or gone and not yet replaced).</summary>
    public long RequestsRepeated => Volatile.Read(ref _repeats);

    internal void Fed(long entries, int bytes)
    {
        Interlocked.Increment(ref _chunks);
        Interlocked.Add(ref _entries, entries);
        Interlocked.Add(ref _bytes, bytes);
    }

    internal void Received() => Interlocked.Increment(ref _received);
    internal void Acked() => Interlocked.Increment(ref _acks);
    internal void Repeated() => Interlocked.Increment(ref _repeats);
}
