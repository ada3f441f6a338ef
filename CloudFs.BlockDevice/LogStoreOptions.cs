// Settings of one log store (one device); read once from HOCON by the node.
using CloudFs.BlockDevice.Device;

namespace CloudFs.BlockDevice;

public sealed record LogStoreOptions
{
    /// <summary>A regular file (created sparse when missing) or a raw block device.</summary>
    public required string Path { get; init; }

    /// <summary>Size of a file created on first use; ignored for an existing file or a block device.</summary>
    public long CreateSize { get; init; } = 4L << 30;

    /// <summary>The host id to format with, or to check against the device header. Null: generate once / keep.</summary>
    public Id160? HostId { get; init; }

    public int SegmentSize { get; init; } = 16 << 20;

    /// <summary>Checkpoint when this much time has passed since the last one and something changed.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// At most this many bytes of log are replayed after a crash (bounds roll-forward time): a checkpoint starts once
    /// half of it was written since the last one, and the writer waits at the bound until that checkpoint is durable.
    /// long.MaxValue: checkpoints by time only.
    /// </summary>
    public long CheckpointBytes { get; init; } = 256L << 20;

    /// <summary>The host-private file with the volumes' secret view-stamps. Null: "PATH.keys" for a file, required for a block device.</summary>
    public string? KeyFilePath { get; init; }

    /// <summary>Use O_DIRECT where the filesystem allows it; false forces buffered I/O + fdatasync.</summary>
    public bool DirectIo { get; init; } = true;

    /// <summary>
    /// Volumes' reads go through the kernel's page cache (every block still verified against its CRC); false reads
    /// every block from the device (O_DIRECT) each time.
    /// </summary>
    public bool CachedReads { get; init; } = true;

    /// <summary>Compaction picks segments with at least this fraction of dead bytes (while free space is not short).</summary>
    public double CompactionThreshold { get; init; } = 0.2;

    /// <summary>
    /// This fraction of the log's segments (rounded up) is kept for compaction's relocations: ordinary appends see the
    /// log as full that much earlier, so compaction can always copy live data forward and free segments.
    /// </summary>
    public double CompactionReserve { get; init; } = 0.02;

    /// <summary>Compaction starts by itself (not only when asked) when no more than this fraction of the segments (rounded up) is free.</summary>
    public double CompactionLowWater { get; init; } = 0.1;

    /// <summary>False: compaction runs only when asked (CompactAsync), never by itself on free space.</summary>
    public bool AutoCompaction { get; init; } = true;

    /// <summary>
    /// How long an append that would need one of the reserved segments waits for compaction to free space before it
    /// fails with LogFullException; it fails at once when compaction finds nothing to free.
    /// </summary>
    public TimeSpan SpaceWaitLimit { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>cloudfs.retention.time: versions written within this long stay branchable, readable and diffable after
    /// compaction (LogStore.VersionRetention.cs); zero: only what compaction has not reached yet (the engine's default,
    /// for tests of compaction itself; the node's is 24 h).</summary>
    public TimeSpan RetentionTime { get; init; } = TimeSpan.Zero;

    /// <summary>Where the engine says what it did (format, recovery, fallbacks). Null: silent.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Where the engine reports what it cannot go on from (the node logs it at ERROR): a failed device, once. Null: <see cref="Log"/>.</summary>
    public Action<string>? LogError { get; init; }

    /// <summary>Tests: wraps the opened device (in a FaultyDevice) before the store uses it.</summary>
    internal Func<ILogDevice, ILogDevice>? WrapDevice { get; init; }
}
