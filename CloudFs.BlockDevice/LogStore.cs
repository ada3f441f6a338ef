// The engine's front door: one log on one device holding every volume of this host.
// Thread-safe: any number of callers; appends are group-committed by one writer. A façade over services that own their
// state (store.Checkpoints, store.Ownership, store.Resync, store.Scrubber, store.Repair, store.Restoration,
// store.Streams) and the LogStore.*.cs partial files not yet moved out (append, read, recovery, forks, version lookup,
// compaction, lifecycle), over Device/, Format/, Log/ and Streams/; docs/ENGINE.md is the map.
using System.Collections.Concurrent;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Repair;
using CloudFs.BlockDevice.Resync;
using CloudFs.BlockDevice.Scrub;
using CloudFs.BlockDevice.Streams;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore : IAsyncDisposable, IDisposable
{
    /// <summary>512-byte blocks everywhere: NBD alignment, entry layout, index granularity.</summary>
    public const int BlockSize = 512;

    /// <summary>Largest extent one entry carries (blocks); larger writes become several entries.</summary>
    public const int MaxEntryBlocks = 2048;

    private readonly LogStoreOptions _options;
    private readonly ILogDevice _device;
    private readonly DeviceHeader _layout;
    private readonly SegmentTable _segments;
    private readonly KeyFile _keys;
    private readonly ConcurrentDictionary<Id160, VolumeState> _volumes = new();
    private readonly ReadBufferPool _readPool = new(SmallReadChunk + 2 * AlignedBuffer.Alignment, 64, ReadChunk + 2 * AlignedBuffer.Alignment, 16);
    private readonly EntryMetaCache _metaCache = new(64L << 20);
    // Volumes' reads through the page cache (LogStoreOptions.CachedReads); scrub, repair and compaction read the device.
    private readonly bool _cachedReads;
    private GroupCommitAppender _appender = null!;
    private readonly TaskCompletionSource<DeviceException> _deviceFailed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private LogStore(LogStoreOptions options, ILogDevice device, DeviceHeader layout, KeyFile keys)
    {
        _options = options;
        _cachedReads = options.CachedReads;
        _device = device;
        _layout = layout;
        _keys = keys;
        _segments = new SegmentTable(layout.SegmentCount);
        Resync = new FullResync(this, options);
        Checkpoints = new Checkpoints(this, options, device, layout, _segments);
        Ownership = new Ownership(this, options, keys);
        Damage = new Damage(this, options);
        Scrubber = new Scrubber(this, options, device, layout, _segments);
        Repair = new BlockRepair(this, options);
        Restoration = new EntryRestoration(this, options);
        Streams = new VersionStreams(this, options, device);
        SetSpaceRules();
    }

    /// <summary>
    /// Opens (and pins: exclusive lock / O_EXCL) the device. A device whose header is zero is formatted;
    /// otherwise the newer valid checkpoint is loaded and the log rolled forward to the last good entry.
    /// Throws <see cref="DeviceException"/> when the device is held elsewhere or the host id differs.
    /// </summary>
    public static LogStore Open(LogStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.SegmentSize < 65536 || options.SegmentSize % AlignedBuffer.Alignment != 0)
            throw new DeviceException($"segment size {options.SegmentSize} must be a multiple of 4096 and at least 64 KiB");
        // A file this open creates is removed again when the open fails (too small, say): a refusal leaves nothing behind.
        var created = !File.Exists(options.Path) && !options.Path.StartsWith("/dev/", StringComparison.Ordinal);
        ILogDevice device = FileDevice.Open(options.Path, options.CreateSize, options.DirectIo, options.Log);
        LogStore? store = null;
        try
        {
            if (options.WrapDevice is { } wrap) device = wrap(device);
            // A failed write or fdatasync, whoever issues it, fails every later one: the store is then failed for good.
            device = new FailStopDevice(device, e => store?.OnDeviceFailed(e));
            var layout = ReadOrFormat(device, options);
            var keyPath = options.KeyFilePath ?? (device.Kind == DeviceKind.BlockDevice
                ? throw new DeviceException($"{device.Path} is a block device: LogStoreOptions.KeyFilePath must name the key file")
                : device.Path + ".keys");
            store = new LogStore(options, device, layout, KeyFile.Load(keyPath));
            store.Recover();
            return store;
        }
        catch
        {
            device.Dispose();
            if (created) File.Delete(options.Path);
            throw;
        }
    }

    private static DeviceHeader ReadOrFormat(ILogDevice device, LogStoreOptions options)
    {
        using var page = new AlignedBuffer(DeviceHeader.Size);
        device.Read(page.Span, 0);
        if (DeviceHeader.TryDecode(page.Span, out var header, out var error))
        {
            if (options.HostId is { } want && want != header.HostId)
                throw new DeviceException($"device {device.Path} belongs to host {header.HostId}, not {want}");
            return header;
        }
        if (error is not null)
            throw new DeviceException($"{device.Path}: {error}; refusing to format over it (run `cloudfs nuke` first)");
        var seed = new byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(seed);
        // A random first seq: entries left by an earlier format of this device never carry a seq this one uses.
        var initialSeq = (System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(seed) >> 2) + 1;
        header = DeviceHeader.Layout(options.HostId ?? Id160.Random(), device.Size, options.SegmentSize, initialSeq);
        page.Span.Clear();
        device.Write(page.Span, header.CheckpointSlotA);
        device.Write(page.Span, header.CheckpointSlotB);
        device.Write(page.Span, header.FirstSegmentOffset);
        device.Flush();
        header.Encode(page.Span);
        device.Write(page.Span, 0);
        device.Flush();
        options.Log?.Invoke($"formatted {device.Path}: host {header.HostId}, device {header.DeviceId}, {header.SegmentCount} segments of {header.SegmentSize} bytes");
        return header;
    }

    /// <summary>
    /// Zeroes the device header and checkpoint slots so the next Open formats it (`cloudfs nuke`).
    /// Refuses (DeviceException) a device another process or store holds.
    /// </summary>
    public static void Nuke(string path) => FileDevice.Nuke(path);

    public Id160 HostId => _layout.HostId;

    /// <summary>
    /// The host id in the header of the device or file at <paramref name="path"/>, read without opening it for the log
    /// (a node announces it before it opens its log); null when there is no such file or it is not formatted.
    /// </summary>
    public static Id160? PeekHostId(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var page = new byte[AlignedBuffer.Alignment];
            var got = 0;
            while (got < page.Length)
            {
                var n = fs.Read(page, got, page.Length - got);
                if (n == 0) return null;
                got += n;
            }
            return Format.DeviceHeader.TryDecode(page, out var header, out _) ? header.HostId : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
    public Guid DeviceId => _layout.DeviceId;
    /// <summary>True when the device is driven with O_DIRECT, false on the buffered fallback.</summary>
    public bool IsDirectIo => _device.IsDirectIo;

    /// <summary>
    /// Why the device failed (a write or fdatasync error, or the log writer's own failure); null while it works. From
    /// then on every append, flush and checkpoint fails, for good: only a restart on a good device brings the store back.
    /// Reads go on while the device reads.
    /// </summary>
    public DeviceException? DeviceFailure => _deviceFailed.Task.IsCompleted ? _deviceFailed.Task.Result : null;

    /// <summary>Completes, once, when the device fails (see <see cref="DeviceFailure"/>).</summary>
    public Task<DeviceException> DeviceFailed => _deviceFailed.Task;

    /// <summary>The first failure of the device or the log writer: reported once, as an error, and signalled.</summary>
    private void OnDeviceFailed(Exception error)
    {
        var e = error as DeviceException ?? new DeviceException($"the log writer of {_device.Path} failed: {error.Message}", error);
        if (!_deviceFailed.TrySetResult(e)) return;
        (_options.LogError ?? _options.Log)?.Invoke($"{e.Message}; the log takes no more writes until the node is restarted on a good device");
    }

    /// <summary>Free segments: the count placement needs for every round and vote, without <see cref="Usage"/>'s walk of
    /// every volume's index (which holds each index's lock a while).</summary>
    public int FreeSegments => _segments.FreeCount;

    /// <summary>Size of one segment in bytes.</summary>
    public int SegmentSize => _layout.SegmentSize;

    public LogUsage Usage
    {
        get
        {
            var (states, _) = _segments.Copy();
            var free = states.Count(s => s == SegmentState.Free);
            long live = 0, index = 0;
            foreach (var v in _volumes.Values)
                lock (v.IndexLock)
                {
                    foreach (var e in v.Index.Enumerate())
                        if (!e.IsZero) live += (long)e.Count * BlockSize;
                    index += v.Index.MemoryBytes + v.Lsns.MemoryBytes;
                }
            var capacity = (long)_layout.SegmentCount * _layout.SegmentSize;
            return new LogUsage(capacity, (long)(states.Length - free) * _layout.SegmentSize, _layout.SegmentSize, states.Length, free, live, index);
        }
    }

    public IReadOnlyList<VolumeInfo> ListVolumes() =>
        _volumes.Values.Where(v => v.Committed).Select(Info).OrderBy(v => v.BaseId).ToList();

    public VolumeInfo? GetVolume(Id160 volume) =>
        _volumes.TryGetValue(volume, out var v) && v.Committed ? Info(v) : null;

    /// <summary>True when this store holds the volume and its secret, i.e. can extend its chain (cheap: no allocation);
    /// false for every volume once the device failed. (VolumeInfo.IsWritable still says whose secret it holds: a
    /// failed writer is the one placement fails over, and its writes fail with the device's error.)</summary>
    public bool IsWritable(Id160 volume) => _volumes.TryGetValue(volume, out var v) && v.Committed && v.IsWritable && !_deviceFailed.Task.IsCompleted;

    internal static VolumeInfo Info(VolumeState v) { lock (v.IndexLock) return v.ToInfo(); }

    /// <summary>Who may extend each volume's chain here: the host key, shares, take-over and the chain claim (docs/ENGINE.md).</summary>
    public Ownership Ownership { get; }

    /// <summary>Checkpoints: writing one now or when due, and what a crash would replay (docs/ENGINE.md).</summary>
    public Checkpoints Checkpoints { get; }

    /// <summary>Full resyncs: sending a volume whole as of one lsn, and receiving one (docs/ENGINE.md).</summary>
    public FullResync Resync { get; }

    /// <summary>Scrubs and deep-verify digests: stored data read back and checked (docs/ENGINE.md).</summary>
    public Scrubber Scrubber { get; }

    /// <summary>Restoring bad stored blocks from the replicas' copies (docs/ENGINE.md).</summary>
    public BlockRepair Repair { get; }

    /// <summary>Restoring lost entries and entries whose header went bad from a replica's copy (docs/ENGINE.md).</summary>
    public EntryRestoration Restoration { get; }

    /// <summary>Version streams: a volume's entries read out (streams, replicas' feeds, lag), the ranges two versions differ
    /// in, and streams applied (docs/ENGINE.md).</summary>
    public VersionStreams Streams { get; }

    /// <summary>The damage of stored blocks, marked in and cleared from every volume that reads them.</summary>
    internal Damage Damage { get; }

    /// <summary>The volumes this store holds (services of the engine look them up and install them).</summary>
    internal ConcurrentDictionary<Id160, VolumeState> VolumeStates => _volumes;

    /// <summary>The group-commit writer every entry goes through.</summary>
    internal GroupCommitAppender Appender => _appender;

    /// <summary>The secrets this host holds.</summary>
    internal KeyFile Keys => _keys;

    /// <summary>Reads and checks the header and CRC-table sectors of the entry at <paramref name="entryBlock"/> into
    /// <paramref name="meta"/> (the read path's, from the device; for services that read entries by lsn).</summary>
    internal EntryHeader ReadEntryHeader(long entryBlock, byte[] meta, Id160 volume) => ReadEntryMeta(entryBlock, meta, volume);

    /// <summary>A branch's index of <paramref name="src"/> as of <paramref name="lsn"/> and its size (the append path's
    /// BranchIndex, for a streamed branch entry).</summary>
    internal (ExtentIndex Index, long SizeBytes) BranchIndexOf(VolumeState src, long lsn, Id160 version) => BranchIndex(src, lsn, version);

    internal VolumeState Volume(Id160 volume) =>
        _volumes.TryGetValue(volume, out var v) && v.Committed ? v : throw new VolumeNotFoundException(volume);

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await StopPassesAsync().ConfigureAwait(false);
        Exception? error = null;
        try { await Checkpoints.WriteAndFreeAsync(CancellationToken.None).ConfigureAwait(false); }
        catch (Exception ex) { error = ex; _options.Log?.Invoke($"checkpoint at close failed: {ex.Message}"); }
        Checkpoints.Bound.Close();
        _appender.Dispose();
        _keys.Dispose();
        _readPool.Dispose();
        _device.Dispose();
        _ = error;
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Tests: makes everything so far durable and returns where the next entry goes (device offset).</summary>
    internal async Task<long> DurablePositionAsync()
    {
        long offset = 0;
        var barrier = new BarrierItem(p => offset = p.Offset);
        _appender.Enqueue(barrier);
        await barrier.Done.Task.ConfigureAwait(false);
        return offset;
    }

    /// <summary>Tests: stops like a crash would leave the device: no checkpoint at close (written entries stay in the page cache).</summary>
    internal void CloseWithoutCheckpoint()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        StopPassesAsync().GetAwaiter().GetResult();
        Checkpoints.Bound.Close();
        _appender.Dispose();
        _keys.Dispose();
        _readPool.Dispose();
        _device.Dispose();
    }

    internal DeviceHeader Layout => _layout;

    /// <summary>Benchmarks: what the writer thread spent its time on.</summary>
    internal string WriterStats => _appender.Stats.ToString();

    /// <summary>How many times the log device was flushed (fdatasync) since the store opened.</summary>
    internal long DeviceSyncs => Volatile.Read(ref _appender.Stats.Syncs);
}
