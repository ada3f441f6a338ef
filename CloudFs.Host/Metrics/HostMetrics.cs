// The node's Prometheus metrics (GET /metrics): block I/O counts, bytes, latencies, requests in flight, log usage,
// compaction and the writes that waited for it, replication, scrubs and repairs, how much this node cannot serve,
// and the NBD server's connections and payload bytes.
using CloudFs.Actors.Identity;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Streams;
using CloudFs.Host.Nbd;
using Prometheus;

namespace CloudFs.Host.Metrics;

internal sealed class HostMetrics
{
    // 50 µs .. ~1.6 s: NVMe appends up to a stalled fdatasync.
    private static readonly double[] LatencyBuckets = Histogram.ExponentialBuckets(0.00005, 2, 16);

    public CollectorRegistry Registry { get; }
    public Counter Reads { get; }
    public Counter Writes { get; }
    public Counter ZeroWrites { get; }
    public Counter Flushes { get; }
    public Counter ReadBytes { get; }
    public Counter WrittenBytes { get; }
    public Counter.Child ReadErrors { get; }
    public Counter.Child WriteErrors { get; }
    public Counter.Child FlushErrors { get; }
    public Histogram ReadLatency { get; }
    public Histogram WriteLatency { get; }
    public Histogram FlushLatency { get; }
    public Gauge InFlight { get; }

    private readonly Gauge _logCapacity, _logUsed, _logLive, _segments, _freeSegments, _volumes, _indexBytes;
    private readonly Counter _placementReports, _placementReportedVolumes, _placementFollows;
    private Func<LogUsage?>? _usage;
    private Func<int>? _volumeCount;
    private readonly Gauge _reserveSegments, _spaceWaiting;
    private readonly Counter _compactionPasses, _compactionSkipped, _compactedSegments, _compactionCopied, _freedSegments, _spaceWaits, _spaceRefused;
    private Func<CompactionStats?>? _compaction;
    private readonly Counter _feedChunks, _feedEntries, _feedBytes, _replicaChunks, _replicaAcks, _repeats;
    private ReplicationCounters? _replication;
    private readonly Counter _identityRefusals;
    private IdentityRefusals? _refusals;
    private readonly Counter _scrubBytes, _scrubBad, _scrubPasses, _repairReads, _repairBlocks, _repairRefused, _repairEntries, _repairEntriesRefused;
    private readonly Gauge _scrubRunning, _scrubLastEnd, _damagedBytes, _damagedVolumes;
    private Func<ScrubStats>? _scrub;
    private Func<StreamReadStats>? _streamReads;
    private readonly Counter.Child _streamedFromMemory, _streamedFromDevice;
    private Func<IReadOnlyList<VolumeInfo>>? _volumeInfos;
    private readonly Gauge _nbdConnections, _nbdPayloadBytes, _nbdBufferBytes;
    private readonly Counter _nbdRefused, _nbdPayloadTimeouts;
    private NbdServer? _nbd;

    public HostMetrics(CollectorRegistry registry)
    {
        Registry = registry;
        var f = Prometheus.Metrics.WithCustomRegistry(registry);
        Reads = f.CreateCounter("cloudfs_reads_total", "Block reads served (NBD and HTTP).");
        Writes = f.CreateCounter("cloudfs_writes_total", "Block writes acknowledged (NBD and HTTP).");
        ZeroWrites = f.CreateCounter("cloudfs_zero_writes_total", "WRITE_ZEROES and TRIM requests acknowledged.");
        Flushes = f.CreateCounter("cloudfs_flushes_total", "Flushes completed.");
        ReadBytes = f.CreateCounter("cloudfs_read_bytes_total", "Bytes returned by reads.");
        WrittenBytes = f.CreateCounter("cloudfs_written_bytes_total", "Bytes accepted by writes (zeroed ranges not counted).");
        var errors = f.CreateCounter("cloudfs_io_errors_total", "Block requests that failed, by operation.", "op");
        ReadErrors = errors.WithLabels("read");
        WriteErrors = errors.WithLabels("write");
        FlushErrors = errors.WithLabels("flush");
        ReadLatency = f.CreateHistogram("cloudfs_read_latency_seconds", "Read latency as the front end sees it.", new HistogramConfiguration { Buckets = LatencyBuckets });
        WriteLatency = f.CreateHistogram("cloudfs_write_latency_seconds", "Write (and zero) latency until acknowledged.", new HistogramConfiguration { Buckets = LatencyBuckets });
        FlushLatency = f.CreateHistogram("cloudfs_flush_latency_seconds", "Flush latency until durable.", new HistogramConfiguration { Buckets = LatencyBuckets });
        InFlight = f.CreateGauge("cloudfs_requests_in_flight", "Block requests accepted and not yet answered (queue depth).");
        _logCapacity = f.CreateGauge("cloudfs_log_capacity_bytes", "Capacity of this node's log device.");
        _logUsed = f.CreateGauge("cloudfs_log_used_bytes", "Bytes of the log in used segments.");
        _logLive = f.CreateGauge("cloudfs_log_live_bytes", "Bytes of the log still referenced by some volume.");
        _indexBytes = f.CreateGauge("cloudfs_index_memory_bytes",
            "Approximate memory of this node's volume indexes (extent indexes and lsn tables; pages a branch shares with its source counted in both).");
        _placementReports = f.CreateCounter("cloudfs_placement_reports_total", "Placement rounds this node reported its volumes to.");
        _placementReportedVolumes = f.CreateCounter("cloudfs_placement_reported_volumes_total",
            "Volumes in those reports: those changed since the last report, or every volume in a full report (after placement moved or this node restarted, and in placement's sweep).");
        _placementFollows = f.CreateCounter("cloudfs_placement_follow_commands_total", "Commands from placement to follow a volume's primary that this node took.");
        _segments = f.CreateGauge("cloudfs_log_segments", "Segments of the log.");
        _freeSegments = f.CreateGauge("cloudfs_log_free_segments", "Free segments of the log.");
        _volumes = f.CreateGauge("cloudfs_volumes", "Volumes held in this node's log.");
        _reserveSegments = f.CreateGauge("cloudfs_log_reserve_segments",
            "Free segments kept for compaction's copies (cloudfs.compaction.reserve): writes see the log as full when only these are free.");
        _spaceWaiting = f.CreateGauge("cloudfs_log_space_waiting", "Writes waiting now for compaction to free a segment.");
        _spaceWaits = f.CreateCounter("cloudfs_log_space_waits_total", "Writes (log entries) that had to wait for compaction to free a segment.");
        _spaceRefused = f.CreateCounter("cloudfs_log_space_refused_total",
            "Writes (log entries) that failed with ENOSPC after waiting: compaction found nothing to free, or not within cloudfs.compaction.max-wait.");
        _compactionPasses = f.CreateCounter("cloudfs_compaction_passes_total", "Compaction passes run (on the timer or because free space was short).");
        _compactionSkipped = f.CreateCounter("cloudfs_compaction_skipped_passes_total",
            "Timer passes skipped over an idle log: no entry placed, no segment or history due since the last pass.");
        _compactedSegments = f.CreateCounter("cloudfs_compaction_segments_total", "Segments compaction emptied.");
        _compactionCopied = f.CreateCounter("cloudfs_compaction_copied_bytes_total", "Live bytes compaction copied forward.");
        _freedSegments = f.CreateCounter("cloudfs_compaction_freed_segments_total", "Segments that became free again after a checkpoint.");
        _feedChunks = f.CreateCounter("cloudfs_feed_chunks_total", "Feed chunks of entries this node sent to its replicas as a primary.");
        _feedEntries = f.CreateCounter("cloudfs_feed_entries_total", "Entries in those chunks (entries per chunk: how well the feed batches).");
        _feedBytes = f.CreateCounter("cloudfs_feed_bytes_total", "Bytes of entries in those chunks.");
        var streamed = f.CreateCounter("cloudfs_stream_entries_total",
            "Entries feeds and streams sent, by where they came from: memory (the copies of a volume's last entries) or device (read back: a replica or stream further behind than the copies reach).", "source");
        _streamedFromMemory = streamed.WithLabels("memory");
        _streamedFromDevice = streamed.WithLabels("device");
        _replicaChunks = f.CreateCounter("cloudfs_replica_chunks_total", "Feed chunks of entries this node received as a replica.");
        _replicaAcks = f.CreateCounter("cloudfs_replica_acks_total", "Acknowledgements (written and durable lsns) this node sent to primaries as a replica.");
        _repeats = f.CreateCounter("cloudfs_gateway_repeats_total",
            "Volume requests this node sent again after no answer within cloudfs.volumes.attempt-timeout (a slow or lost primary).");
        _identityRefusals = f.CreateCounter("cloudfs_identity_refusals_total",
            "Members this node refused as hosts: they failed their identity proof, were downed, and were logged as an ERROR.");
        _scrubBytes = f.CreateCounter("cloudfs_scrub_bytes_total", "Live stored bytes scrubs read and checked against their checksums.");
        _scrubBad = f.CreateCounter("cloudfs_scrub_bad_blocks_total", "Stored blocks scrubs found failing their checksums (each time found).");
        _scrubPasses = f.CreateCounter("cloudfs_scrub_passes_total", "Scrubs (background or cloudfs scrub) that read every block they were to read.");
        _scrubRunning = f.CreateGauge("cloudfs_scrub_running", "Scrubs reading this node's log now.");
        _scrubLastEnd = f.CreateGauge("cloudfs_scrub_last_pass_end_seconds", "When the last complete scrub ended (Unix time; 0 before the first).");
        _repairReads = f.CreateCounter("cloudfs_repair_reads_total", "Client reads that met a bad block here and were served after restoring it from another replica.");
        _repairBlocks = f.CreateCounter("cloudfs_repair_blocks_total", "Blocks restored from another replica (checked against this node's own checksums; where a header that checked them went bad, confirming this node's own bytes or agreed by a majority of the replicas).");
        _repairRefused = f.CreateCounter("cloudfs_repair_refused_blocks_total",
            "Blocks another replica sent for a repair that this node refused (another version, or bytes that do not match its checksum).");
        _repairEntries = f.CreateCounter("cloudfs_repair_entries_total",
            "Entries lost to corruption on this node (a header beyond correction) restored from another replica's copy that fits the chain.");
        _repairEntriesRefused = f.CreateCounter("cloudfs_repair_refused_entries_total",
            "Entries of another replica's copy of lost entries that this node refused (they do not fit its chain, or fail their checksums).");
        _damagedBytes = f.CreateGauge("cloudfs_damaged_bytes", "Bytes of volumes this node cannot serve (its damage maps): cloudfs scrub repairs what a replica holds.");
        _damagedVolumes = f.CreateGauge("cloudfs_damaged_volumes", "Volumes with ranges this node cannot serve (`cloudfs ls` shows them damaged).");
        _nbdConnections = f.CreateGauge("cloudfs_nbd_connections", "NBD connections open (at most cloudfs.nbd.max-connections).");
        _nbdPayloadBytes = f.CreateGauge("cloudfs_nbd_payload_bytes_in_flight", "READ and WRITE payload bytes NBD connections hold (at most cloudfs.nbd.in-flight-bytes).");
        _nbdBufferBytes = f.CreateGauge("cloudfs_nbd_payload_buffer_bytes", "Mapped bytes of large (1 MiB and up) NBD payload buffers: held by requests or kept for reuse (at most cloudfs.nbd.retained-payload-bytes idle).");
        _nbdRefused = f.CreateCounter("cloudfs_nbd_connections_refused_total", "NBD connections closed at once because cloudfs.nbd.max-connections were open.");
        _nbdPayloadTimeouts = f.CreateCounter("cloudfs_nbd_payload_timeouts_total", "NBD connections dropped because a WRITE payload did not arrive within cloudfs.nbd.payload-timeout.");
        registry.AddBeforeCollectCallback(Refresh);
    }

    /// <summary>Where the log gauges come from; read at each scrape, so nothing polls in between.</summary>
    public void ObserveLog(Func<LogUsage?> usage, Func<int> volumeCount)
    {
        _usage = usage;
        _volumeCount = volumeCount;
    }

    /// <summary>Where the compaction counters come from; read at each scrape.</summary>
    public void ObserveCompaction(Func<CompactionStats?> stats) => _compaction = stats;

    /// <summary>Where the replication counters come from; read at each scrape.</summary>
    public void ObserveReplication(ReplicationCounters counters) => _replication = counters;

    /// <summary>Where the identity refusals come from; read at each scrape.</summary>
    public void ObserveIdentity(IdentityRefusals refusals) => _refusals = refusals;

    /// <summary>Where the scrub totals and the volumes' damage come from; read at each scrape.</summary>
    public void ObserveIntegrity(Func<ScrubStats> scrub, Func<IReadOnlyList<VolumeInfo>> volumes)
    {
        _scrub = scrub;
        _volumeInfos = volumes;
    }
    /// <summary>Where the streamed-entry counters come from; read at each scrape.</summary>
    public void ObserveStreamReads(Func<StreamReadStats> stats) => _streamReads = stats;

    /// <summary>Where the NBD gauges come from; read at each scrape.</summary>
    public void ObserveNbd(NbdServer nbd) => _nbd = nbd;

    private void Refresh()
    {
        if (_nbd is { } nbd)
        {
            _nbdConnections.Set(nbd.ConnectionCount);
            _nbdPayloadBytes.Set(nbd.PayloadBytesInFlight);
            _nbdBufferBytes.Set(nbd.PayloadBufferBytes);
            _nbdRefused.IncTo(nbd.ConnectionsRefused);
            _nbdPayloadTimeouts.IncTo(nbd.PayloadTimeouts);
        }
        if (_replication is { } r)
        {
            _feedChunks.IncTo(r.FeedChunks);
            _feedEntries.IncTo(r.FeedEntries);
            _feedBytes.IncTo(r.FeedBytes);
            _replicaChunks.IncTo(r.ChunksReceived);
            _replicaAcks.IncTo(r.AcksSent);
            _repeats.IncTo(r.RequestsRepeated);
            _placementReports.IncTo(r.PlacementReports);
            _placementReportedVolumes.IncTo(r.PlacementReportedVolumes);
            _placementFollows.IncTo(r.PlacementFollowCommands);
            _repairReads.IncTo(r.RepairReads);
            _repairBlocks.IncTo(r.BlocksRepaired);
            _repairRefused.IncTo(r.RepairBlocksRefused);
            _repairEntries.IncTo(r.EntriesRestored);
            _repairEntriesRefused.IncTo(r.RestoreEntriesRefused);
        }
        if (_refusals is { } refusals) _identityRefusals.IncTo(refusals.Total);
        if (_streamReads?.Invoke() is { } streamReads)
        {
            _streamedFromMemory.IncTo(streamReads.EntriesFromMemory);
            _streamedFromDevice.IncTo(streamReads.EntriesFromDevice);
        }
        if (_scrub?.Invoke() is { } scrub)
        {
            _scrubBytes.IncTo(scrub.BytesVerified);
            _scrubBad.IncTo(scrub.BadBlocks);
            _scrubPasses.IncTo(scrub.Passes);
            _scrubRunning.Set(scrub.Running);
            _scrubLastEnd.Set(scrub.LastPassEndUnixSeconds);
        }
        try
        {
            if (_usage?.Invoke() is { } u)
            {
                _logCapacity.Set(u.CapacityBytes);
                _logUsed.Set(u.UsedBytes);
                _logLive.Set(u.LiveBytes);
                _indexBytes.Set(u.IndexBytes);
                _segments.Set(u.TotalSegments);
                _freeSegments.Set(u.FreeSegments);
            }
            if (_volumeCount is not null) _volumes.Set(_volumeCount());
            if (_compaction?.Invoke() is { } c)
            {
                _reserveSegments.Set(c.ReserveSegments);
                _spaceWaiting.Set(c.AppendsWaiting);
                _spaceWaits.IncTo(c.AppendsWaited);
                _spaceRefused.IncTo(c.AppendsRefused);
                _compactionPasses.IncTo(c.Passes);
                _compactionSkipped.IncTo(c.PassesSkipped);
                _compactedSegments.IncTo(c.SegmentsCompacted);
                _compactionCopied.IncTo(c.BytesCopied);
                _freedSegments.IncTo(c.SegmentsFreed);
            }
            if (_volumeInfos?.Invoke() is { } infos)
            {
                _damagedBytes.Set(infos.Sum(v => v.Damage.Sum(d => d.Length)));
                _damagedVolumes.Set(infos.Count(v => v.IsDamaged));
            }
        }
        catch (ObjectDisposedException)
        {
            // A scrape racing shutdown keeps the last values.
        }
    }
}
