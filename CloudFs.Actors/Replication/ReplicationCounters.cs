// What a node's replication moved, for its metrics: feeds it served as a primary, acknowledgements it sent as a
// replica, requests its gateway asked again of a primary that was slow to answer, blocks it restored from other
// replicas, and the work placement's rounds asked of it. One instance per node (shared by its host agent, feeders, followers, gateway and integrity agent); read at
// each scrape.
namespace CloudFs.Actors.Replication;

public sealed class ReplicationCounters
{
    private long _chunks, _entries, _bytes, _received, _acks, _repeats, _repairReads, _repaired, _refused, _restored, _restoreRefused;
    private long _reports, _reportedVolumes, _followCommands;

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

    /// <summary>Client reads that met a bad block here and were served after restoring it from another replica.</summary>
    public long RepairReads => Volatile.Read(ref _repairReads);
    /// <summary>Blocks restored from another replica (checked against this host's own checksums).</summary>
    public long BlocksRepaired => Volatile.Read(ref _repaired);
    /// <summary>Blocks another replica sent for a repair that this host refused (wrong bytes, another version).</summary>
    public long RepairBlocksRefused => Volatile.Read(ref _refused);

    /// <summary>Entries lost to corruption here (their header beyond correction) restored from another replica's copy.</summary>
    public long EntriesRestored => Volatile.Read(ref _restored);
    /// <summary>Entries of another replica's copy of lost entries that this host refused (they do not fit its chain).</summary>
    public long RestoreEntriesRefused => Volatile.Read(ref _restoreRefused);

    /// <summary>Placement rounds this host reported its volumes to (what placement's polling costs every host).</summary>
    public long PlacementReports => Volatile.Read(ref _reports);
    /// <summary>Volumes in those reports.</summary>
    public long PlacementReportedVolumes => Volatile.Read(ref _reportedVolumes);
    /// <summary>Commands from placement to follow a volume's primary that this host took.</summary>
    public long PlacementFollowCommands => Volatile.Read(ref _followCommands);

    internal void ReportedToPlacement(int volumes)
    {
        Interlocked.Increment(ref _reports);
        Interlocked.Add(ref _reportedVolumes, volumes);
    }

    internal void FollowCommanded() => Interlocked.Increment(ref _followCommands);

    internal void Fed(long entries, int bytes)
    {
        Interlocked.Increment(ref _chunks);
        Interlocked.Add(ref _entries, entries);
        Interlocked.Add(ref _bytes, bytes);
    }

    internal void Received() => Interlocked.Increment(ref _received);
    internal void Acked() => Interlocked.Increment(ref _acks);
    internal void Repeated() => Interlocked.Increment(ref _repeats);
    internal void ReadRepaired() => Interlocked.Increment(ref _repairReads);

    internal void Repaired(long blocks, long refused)
    {
        Interlocked.Add(ref _repaired, blocks);
        Interlocked.Add(ref _refused, refused);
    }

    internal void Restored(long entries, long refused)
    {
        Interlocked.Add(ref _restored, entries);
        Interlocked.Add(ref _restoreRefused, refused);
    }
}
