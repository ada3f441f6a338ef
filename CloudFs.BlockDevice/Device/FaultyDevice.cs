// A device for tests that wraps a real one and fails on command: EIO (or any errno) on writes, reads or flushes,
// from now on, once, or only where an I/O covers a given offset; a short write (its first bytes land, then the error);
// a torn write (its first K sectors land and the device is lost, as at a power cut). Hooks run before each write and
// read, to hold an I/O where a test wants it. Injected through LogStoreOptions.WrapDevice.
namespace CloudFs.BlockDevice.Device;

internal enum DeviceOp { Write, Read, Flush }

internal sealed class FaultyDevice(ILogDevice inner) : ILogDevice
{
    /// <summary>The unit a torn write lands in: one 512-byte sector.</summary>
    public const int Sector = LogStore.BlockSize;

    private sealed record Rule(DeviceOp Op, int Errno, bool Once, long At);

    private readonly object _gate = new();
    private readonly List<Rule> _rules = new();
    private (int Bytes, int Errno)? _shortWrite;
    private int? _tornSectors;
    private int _tornMinBytes;
    private bool _lost;
    private long _writes, _reads, _flushes, _cachedReads;

    /// <summary>Runs before each write (e.g. to hold the log writer while an entry is placed but not written).</summary>
    public Action? BeforeWrite { get; set; }

    /// <summary>Runs before each write with its device offset (e.g. to hold only a checkpoint slot's write).</summary>
    public Action<long>? BeforeWriteAt { get; set; }

    /// <summary>Runs before each flush (e.g. to see which thread syncs, or to hold a sync).</summary>
    public Action? BeforeFlush { get; set; }

    /// <summary>Runs before each read (e.g. to hold a reader between its index lookup and its reads).</summary>
    public Action? BeforeRead { get; set; }

    public string Path => inner.Path;
    public long Size => inner.Size;
    public DeviceKind Kind => inner.Kind;
    public bool IsDirectIo => inner.IsDirectIo;

    /// <summary>Writes, reads and flushes that reached this device (failed ones included).</summary>
    public long Writes => Interlocked.Read(ref _writes);
    public long Reads => Interlocked.Read(ref _reads);
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>Reads through the page cache that returned bytes (waiting or not).</summary>
    public long CachedReads => Interlocked.Read(ref _cachedReads);

    /// <summary>Flips a bit in what every cached read returns: a bad copy in the page cache over a good device.</summary>
    public bool CorruptCachedReads { get; set; }

    /// <summary>
    /// Fails <paramref name="op"/> with <paramref name="errno"/>: every time from now on, or only the next matching
    /// one (<paramref name="once"/>); any I/O, or only one that covers byte <paramref name="at"/> (not for flushes).
    /// </summary>
    public void Fail(DeviceOp op, bool once = false, long at = -1, int errno = NativeMethods.EIO)
    {
        lock (_gate) _rules.Add(new Rule(op, errno, once, at));
    }

    /// <summary>The next write lands only its first <paramref name="bytes"/> (a multiple of 512), then fails with <paramref name="errno"/>.</summary>
    public void ShortWrite(int bytes, int errno = NativeMethods.ENOSPC)
    {
        if (bytes < 0 || bytes % Sector != 0) throw new ArgumentOutOfRangeException(nameof(bytes), "a short write lands whole sectors");
        lock (_gate) _shortWrite = (bytes, errno);
    }

    /// <summary>
    /// The next write (of at least <paramref name="minBytes"/>: an entry's, not a durable mark's the writer may place
    /// alone meanwhile) lands only its first <paramref name="sectors"/> sectors, and the device is then lost (a power
    /// cut mid-write): that write and every later write and flush fail with EIO; reads still see what landed.
    /// </summary>
    public void TearNextWrite(int sectors, int minBytes = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sectors);
        lock (_gate) (_tornSectors, _tornMinBytes) = (sectors, minBytes);
    }

    /// <summary>Removes every fault: the device works again (the store above it must stay failed all the same).</summary>
    public void Heal()
    {
        lock (_gate)
        {
            _rules.Clear();
            _shortWrite = null;
            _tornSectors = null;
            _lost = false;
        }
    }

    public void Write(ReadOnlySpan<byte> data, long offset)
    {
        Interlocked.Increment(ref _writes);
        BeforeWrite?.Invoke();
        BeforeWriteAt?.Invoke(offset);
        int? errno;
        (int Bytes, int Errno)? shortWrite;
        int? torn;
        lock (_gate)
        {
            errno = _lost ? NativeMethods.EIO : Match(DeviceOp.Write, offset, data.Length);
            shortWrite = errno is null ? _shortWrite : null;
            torn = errno is null && shortWrite is null && data.Length >= _tornMinBytes ? _tornSectors : null;
            if (shortWrite is not null) _shortWrite = null;
            if (torn is not null) { _tornSectors = null; _lost = true; }
        }
        if (errno is { } e) throw Error($"write of {data.Length} bytes at offset {offset} to {Path} failed", e);
        if (shortWrite is { } s)
        {
            var landed = Math.Min(s.Bytes, data.Length);
            Land(data, offset, landed);
            throw Error($"write of {data.Length} bytes at offset {offset} to {Path} failed after {landed} bytes", s.Errno);
        }
        if (torn is { } k)
        {
            var landed = (int)Math.Min((long)k * Sector, data.Length);
            Land(data, offset, landed);
            throw Error($"write of {data.Length} bytes at offset {offset} to {Path} failed: the device was lost after {landed} bytes", NativeMethods.EIO);
        }
        inner.Write(data, offset);
    }

    public void Read(Span<byte> destination, long offset)
    {
        Interlocked.Increment(ref _reads);
        BeforeRead?.Invoke();
        int? errno;
        lock (_gate) errno = Match(DeviceOp.Read, offset, destination.Length);
        if (errno is { } e) throw Error($"read of {destination.Length} bytes at offset {offset} from {Path} failed", e);
        inner.Read(destination, offset);
    }

    /// <summary>
    /// A cached read meets the same faults and hooks as a device read. One that would not wait declines (returns false)
    /// while any fault or hook is set: the waiting read that follows is the one they act on, once.
    /// </summary>
    public bool ReadCached(Span<byte> destination, long offset, bool wait)
    {
        if (!wait)
        {
            lock (_gate)
                if (BeforeRead is not null || _rules.Count > 0 || _lost) return false;
            return Served(inner.ReadCached(destination, offset, wait: false), destination);
        }
        Interlocked.Increment(ref _reads);
        BeforeRead?.Invoke();
        int? errno;
        lock (_gate) errno = Match(DeviceOp.Read, offset, destination.Length);
        if (errno is { } e) throw Error($"read of {destination.Length} bytes at offset {offset} from {Path} failed", e);
        return Served(inner.ReadCached(destination, offset, wait: true), destination);
    }

    private bool Served(bool read, Span<byte> destination)
    {
        if (!read) return false;
        Interlocked.Increment(ref _cachedReads);
        if (CorruptCachedReads && destination.Length > 0) destination[0] ^= 1;
        return true;
    }

    public void Uncache(long offset, long length) => inner.Uncache(offset, length);

    public void Flush()
    {
        BeforeFlush?.Invoke();
        Interlocked.Increment(ref _flushes);
        int? errno;
        lock (_gate) errno = _lost ? NativeMethods.EIO : Match(DeviceOp.Flush, -1, 0);
        if (errno is { } e) throw Error($"fdatasync of {Path} failed", e);
        inner.Flush();
    }

    public void Dispose() => inner.Dispose();

    /// <summary>The errno of the first rule this I/O meets (a once rule is used up); null when none.</summary>
    private int? Match(DeviceOp op, long offset, int length)
    {
        for (var i = 0; i < _rules.Count; i++)
        {
            var r = _rules[i];
            if (r.Op != op) continue;
            if (r.At >= 0 && op != DeviceOp.Flush && (r.At < offset || r.At >= offset + length)) continue;
            if (r.Once) _rules.RemoveAt(i);
            return r.Errno;
        }
        return null;
    }

    /// <summary>Puts the first <paramref name="bytes"/> of a write on the inner device (a partial last page read, patched, rewritten).</summary>
    private void Land(ReadOnlySpan<byte> data, long offset, int bytes)
    {
        var whole = bytes & ~(AlignedBuffer.Alignment - 1);
        if (whole > 0) inner.Write(data[..whole], offset);
        var rest = bytes - whole;
        if (rest == 0) return;
        using var page = new AlignedBuffer(AlignedBuffer.Alignment);
        inner.Read(page.Span, offset + whole);
        data.Slice(whole, rest).CopyTo(page.Span);
        inner.Write(page.Span, offset + whole);
    }

    private static DeviceException Error(string what, int errno) =>
        new($"{what}: {NativeMethods.Describe(errno)} (injected)", errno: errno);
}
