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

    /// <summary>Checkpoint when this many bytes were appended since the last one (bounds roll-forward time).</summary>
    public long CheckpointBytes { get; init; } = 256L << 20;

    /// <summary>The host-private file with the volumes' secret view-stamps. Null: "PATH.keys" for a file, required for a block device.</summary>
    public string? KeyFilePath { get; init; }

    /// <summary>Use O_DIRECT where the filesystem allows it; false forces buffered I/O + fdatasync.</summary>
    public bool DirectIo { get; init; } = true;

    /// <summary>Compaction picks segments with at least this fraction of dead bytes.</summary>
    public double CompactionThreshold { get; init; } = 0.2;

    /// <summary>Where the engine says what it did (format, recovery, fallbacks). Null: silent.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Where the engine reports what it cannot go on from (the node logs it at ERROR): a failed device, once. Null: <see cref="Log"/>.</summary>
    public Action<string>? LogError { get; init; }

    /// <summary>Tests: wraps the opened device (in a FaultyDevice) before the store uses it.</summary>
    internal Func<ILogDevice, ILogDevice>? WrapDevice { get; init; }
}
