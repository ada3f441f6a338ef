// The engine's front door: one log on one device holding every volume of this host.
// Thread-safe: any number of callers; appends are group-committed by one writer.
namespace CloudFs.BlockDevice;

public sealed partial class LogStore : IAsyncDisposable, IDisposable
{
    /// <summary>512-byte blocks everywhere: NBD alignment, entry layout, index granularity.</summary>
    public const int BlockSize = 512;

    /// <summary>Largest extent one entry carries (blocks); larger writes become several entries.</summary>
    public const int MaxEntryBlocks = 2048;

    /// <summary>
    /// Opens (and pins: exclusive lock / O_EXCL) the device. A device whose header is zero is formatted;
    /// otherwise the newer valid checkpoint is loaded and the log rolled forward to the last good entry.
    /// Throws <see cref="DeviceException"/> when the device is held elsewhere or the host id differs.
    /// </summary>
    public static LogStore Open(LogStoreOptions options) => throw new NotImplementedException();

    /// <summary>
    /// Zeroes the device header and checkpoint slots so the next Open formats it (`cloudfs nuke`).
    /// Refuses (DeviceException) a device another process or store holds.
    /// </summary>
    public static void Nuke(string path) => throw new NotImplementedException();

    public Id160 HostId => throw new NotImplementedException();
    public Guid DeviceId => throw new NotImplementedException();
    /// <summary>True when the device is driven with O_DIRECT, false on the buffered fallback.</summary>
    public bool IsDirectIo => throw new NotImplementedException();
    public LogUsage Usage => throw new NotImplementedException();

    public IReadOnlyList<VolumeInfo> ListVolumes() => throw new NotImplementedException();
    public VolumeInfo? GetVolume(Id160 volume) => throw new NotImplementedException();

    /// <summary>Creates a volume: a fresh secret view-stamp (kept in the key file, never in the log) and a creation entry, durable on return.</summary>
    public Task<VolumeInfo> CreateVolumeAsync(long sizeBytes, VolumeMode mode, IReadOnlyList<Id160> replicas, CancellationToken ct = default)
        => throw new NotImplementedException();

    /// <summary>Creates a writable volume whose unwritten ranges read through to the frozen version <paramref name="fromVersion"/> of a volume held here.</summary>
    public Task<VolumeInfo> BranchAsync(Id160 fromVersion, CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>
    /// Appends one entry for <paramref name="volume"/> whose lsn must be <paramref name="expectedLsn"/> (head + 1):
    /// data of at most <see cref="MaxEntryBlocks"/> blocks, 512-aligned. All-zero blocks are not stored.
    /// Completes once the entry is in the log (durable too when <paramref name="durable"/>), in log order.
    /// </summary>
    public ValueTask<AppendResult> AppendDataAsync(Id160 volume, long expectedLsn, long offset, ReadOnlyMemory<byte> data, bool durable, CancellationToken ct = default)
        => throw new NotImplementedException();

    /// <summary>Appends one entry that zeroes (or trims) a 512-aligned range of any length.</summary>
    public ValueTask<AppendResult> AppendZeroAsync(Id160 volume, long expectedLsn, long offset, long length, bool durable, CancellationToken ct = default)
        => throw new NotImplementedException();

    /// <summary>Convenience for tests and benchmarks: splits a write into entries with the next lsns.</summary>
    public ValueTask<AppendResult> WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool durable = false, CancellationToken ct = default)
        => throw new NotImplementedException();

    public ValueTask<AppendResult> WriteZeroesAsync(Id160 volume, long offset, long length, bool durable = false, CancellationToken ct = default)
        => throw new NotImplementedException();

    /// <summary>Makes every entry appended before the call durable (one fdatasync for everything pending).</summary>
    public ValueTask FlushAsync(CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>
    /// Reads a 512-aligned range as of the current head: the last written bytes, zeros for holes (no disk access).
    /// A stored block whose checksum fails throws <see cref="DataCorruptionException"/> for the range.
    /// </summary>
    public ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default)
        => throw new NotImplementedException();

    /// <summary>Allocated ranges and holes over [offset, offset+length).</summary>
    public IReadOnlyList<MappedRange> Map(Id160 volume, long offset, long length) => throw new NotImplementedException();

    /// <summary>Headers of the volume's entries with lsn in [fromLsn, toLsn], at most <paramref name="max"/>, oldest first; reads headers only.</summary>
    public IReadOnlyList<EntryHeaderInfo> ReadHeaders(Id160 volume, long fromLsn, long toLsn, long max) => throw new NotImplementedException();

    /// <summary>Lsn of a version of a volume held here (the base id has lsn 1), or throws <see cref="UnknownVersionException"/>.</summary>
    public (Id160 Volume, long Lsn) FindVersion(Id160 version) => throw new NotImplementedException();

    /// <summary>
    /// Writes every entry after <paramref name="afterVersion"/> up to the head, byte for byte as in the log.
    /// With <paramref name="follow"/> it then keeps writing new entries until cancelled.
    /// Throws <see cref="UnknownVersionException"/> / <see cref="VersionCompactedException"/> before writing anything.
    /// </summary>
    public Task StreamAsync(Id160 afterVersion, Stream destination, bool follow, CancellationToken ct = default)
        => throw new NotImplementedException();

    /// <summary>
    /// Reads a stream and appends its entries in order, each verified first (checksums, chain, lsn, bounds).
    /// The first bad entry stops the apply; entries before it stay applied and durable.
    /// </summary>
    public Task<ApplyResult> ApplyAsync(Stream source, CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>Writes a checkpoint now (into the older slot) after making the log durable.</summary>
    public Task CheckpointAsync(CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>Checkpoints when the interval or byte threshold says so; the node calls it from a timer.</summary>
    public Task MaybeCheckpointAsync(CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>Reclaims segments with enough dead bytes, online, crash-safe.</summary>
    public Task<CompactionResult> CompactAsync(CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>Raised after an entry is appended (in log order), for live streams and replicas.</summary>
#pragma warning disable CS0067 // API stub until the engine lands
    public event Action<EntryHeaderInfo>? EntryAppended;
#pragma warning restore CS0067

    public ValueTask DisposeAsync() => throw new NotImplementedException();
    public void Dispose() => throw new NotImplementedException();
}
