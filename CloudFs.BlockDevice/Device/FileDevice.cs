// The real device under the log: a regular file or a block device, opened O_DIRECT where possible and pinned
// (flock for files, O_EXCL for block devices) so a second process or `cloudfs nuke` is refused while it is held.
// Every failed read, write or fdatasync is a DeviceException naming the device, the operation and the errno. A second,
// buffered read-only descriptor serves the volumes' reads through the page cache (docs/FORMAT.md, "Reads").
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CloudFs.BlockDevice.Device;

internal sealed class FileDevice : ILogDevice
{
    private readonly SafeFileHandle _handle;
    private readonly int _fd;
    // The same file opened again without O_DIRECT, for reads through the page cache (ReadCached).
    private readonly SafeFileHandle _cachedHandle;
    private readonly int _cachedFd;
    // Cleared when the kernel or filesystem refuses RWF_NOWAIT: non-waiting reads then decline at once.
    private volatile bool _noWait = true;

    public string Path { get; }
    public long Size { get; }
    public DeviceKind Kind { get; }
    public bool IsDirectIo { get; }

    private FileDevice(string path, SafeFileHandle handle, int fd, int cachedFd, long size, bool isBlock, bool direct)
    {
        Path = path; _handle = handle; _fd = fd; Size = size; Kind = isBlock ? DeviceKind.BlockDevice : DeviceKind.File; IsDirectIo = direct;
        _cachedFd = cachedFd; _cachedHandle = new SafeFileHandle(cachedFd, ownsHandle: true);
    }

    /// <summary>Opens and pins the device; a missing regular file is created sparse with <paramref name="createSize"/>.</summary>
    public static FileDevice Open(string path, long createSize, bool directIo, Action<string>? log)
    {
        var full = System.IO.Path.GetFullPath(path);
        var isBlock = IsBlockDevicePath(full);
        var fd = OpenPinned(full, createSize, directIo, isBlock, log, out var direct);
        var cachedFd = -1;
        try
        {
            var size = NativeMethods.Lseek(fd, 0, NativeMethods.SEEK_END);
            if (size < 0) throw new DeviceException($"cannot size {full}: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
            // The pinned descriptor above holds the file (flock) or device (O_EXCL); this one only reads, through the
            // page cache. No readahead: the log's reads are random, and pages of space not yet written stay uncached.
            cachedFd = NativeMethods.Open(full, NativeMethods.O_RDONLY | NativeMethods.O_CLOEXEC, 0);
            if (cachedFd < 0) throw new DeviceException($"cannot open {full} for cached reads: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
            NativeMethods.PosixFadvise(cachedFd, 0, 0, NativeMethods.POSIX_FADV_RANDOM);
            return new FileDevice(full, new SafeFileHandle(fd, ownsHandle: true), fd, cachedFd, size & ~(AlignedBuffer.Alignment - 1L), isBlock, direct);
        }
        catch
        {
            if (cachedFd >= 0) NativeMethods.Close(cachedFd);
            NativeMethods.Close(fd);
            throw;
        }
    }

    /// <summary>True when the resolved path names a kernel block device (it has an entry in /sys/class/block).</summary>
    public static bool IsBlockDevicePath(string fullPath)
    {
        string resolved = fullPath;
        try
        {
            if (File.ResolveLinkTarget(fullPath, returnFinalTarget: true) is { } target) resolved = target.FullName;
        }
        catch (IOException) { }
        return resolved.StartsWith("/dev/", StringComparison.Ordinal) && Directory.Exists("/sys/class/block/" + System.IO.Path.GetFileName(resolved));
    }

    private static int OpenPinned(string path, long createSize, bool directIo, bool isBlock, Action<string>? log, out bool direct)
    {
        var baseFlags = NativeMethods.O_RDWR | NativeMethods.O_CLOEXEC | (isBlock ? NativeMethods.O_EXCL : 0);
        if (!isBlock && !File.Exists(path))
        {
            if (createSize <= 0 || createSize % AlignedBuffer.Alignment != 0)
                throw new DeviceException($"cannot create {path}: the size {createSize} is not a positive multiple of 4096");
            var cfd = NativeMethods.Open(path, NativeMethods.O_RDWR | NativeMethods.O_CREAT | NativeMethods.O_CLOEXEC, Convert.ToInt32("600", 8));
            if (cfd < 0) throw new DeviceException($"cannot create {path}: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
            // Sparse: only the extent the log writes takes space.
            var rc = NativeMethods.Ftruncate(cfd, createSize);
            var err = Marshal.GetLastPInvokeError();
            NativeMethods.Close(cfd);
            if (rc != 0) throw new DeviceException($"cannot size {path} to {createSize} bytes: {NativeMethods.Describe(err)}");
        }

        direct = directIo;
        var fd = NativeMethods.Open(path, baseFlags | (directIo ? NativeMethods.O_DIRECT : 0), 0);
        if (fd < 0 && directIo && Marshal.GetLastPInvokeError() == NativeMethods.EINVAL)
        {
            direct = false;
            log?.Invoke($"{path}: the filesystem refuses O_DIRECT; using buffered I/O with fdatasync");
            fd = NativeMethods.Open(path, baseFlags, 0);
        }
        if (fd < 0)
        {
            var err = Marshal.GetLastPInvokeError();
            throw err == NativeMethods.EBUSY
                ? new DeviceException($"device {path} is held by another process (exclusive open refused)")
                : new DeviceException($"cannot open {path}: {NativeMethods.Describe(err)}");
        }
        if (!isBlock && NativeMethods.Flock(fd, NativeMethods.LOCK_EX | NativeMethods.LOCK_NB) != 0)
        {
            var err = Marshal.GetLastPInvokeError();
            NativeMethods.Close(fd);
            throw err == NativeMethods.EWOULDBLOCK
                ? new DeviceException($"device {path} is held by another process or store (it is locked)")
                : new DeviceException($"cannot lock {path}: {NativeMethods.Describe(err)}");
        }
        return fd;
    }

    /// <summary>Writes an aligned span at an aligned offset (whole, or throws).</summary>
    public unsafe void Write(ReadOnlySpan<byte> data, long offset)
    {
        if (offset < 0 || offset + data.Length > Size) throw new DeviceException($"write at {offset}+{data.Length} is beyond the end of {Path}");
        var done = 0;
        fixed (byte* p = data)
            while (done < data.Length)
            {
                // A short count is retried for the rest; the kernel then reports why it stopped (ENOSPC, EIO).
                var n = NativeMethods.Pwrite(_fd, p + done, data.Length - done, offset + done);
                if (n > 0) { done += (int)n; continue; }
                var errno = n < 0 ? Marshal.GetLastPInvokeError() : NativeMethods.EIO;
                if (n < 0 && errno == NativeMethods.EINTR) continue;
                throw new DeviceException($"write of {data.Length} bytes at offset {offset} to {Path} failed after {done} bytes: {NativeMethods.Describe(errno)}", errno: errno);
            }
    }

    /// <summary>Reads an aligned span at an aligned offset; throws when the device fails or returns less.</summary>
    public unsafe void Read(Span<byte> destination, long offset)
    {
        if (offset < 0 || offset + destination.Length > Size) throw new DeviceException($"read at {offset}+{destination.Length} is beyond the end of {Path}");
        var done = 0;
        fixed (byte* p = destination)
            while (done < destination.Length)
            {
                var n = NativeMethods.Pread(_fd, p + done, destination.Length - done, offset + done);
                if (n > 0) { done += (int)n; continue; }
                if (n == 0) throw new DeviceException($"short read from {Path} at {offset + done}: the device ended", errno: NativeMethods.EIO);
                var errno = Marshal.GetLastPInvokeError();
                if (errno == NativeMethods.EINTR) continue;
                throw new DeviceException($"read of {destination.Length} bytes at offset {offset} from {Path} failed: {NativeMethods.Describe(errno)}", errno: errno);
            }
    }

    /// <summary>Reads through the page cache (see <see cref="ILogDevice.ReadCached"/>); offsets need only be 512-aligned.</summary>
    public unsafe bool ReadCached(Span<byte> destination, long offset, bool wait)
    {
        if (offset < 0 || offset + destination.Length > Size) throw new DeviceException($"read at {offset}+{destination.Length} is beyond the end of {Path}");
        if (!wait && !_noWait) return false;
        var done = 0;
        fixed (byte* p = destination)
            while (done < destination.Length)
            {
                nint n;
                if (wait) n = NativeMethods.Pread(_cachedFd, p + done, destination.Length - done, offset + done);
                else
                {
                    var iov = new NativeMethods.IoVec { Base = p + done, Length = destination.Length - done };
                    n = NativeMethods.Preadv2(_cachedFd, &iov, 1, offset + done, NativeMethods.RWF_NOWAIT);
                }
                if (n > 0) { done += (int)n; continue; }
                if (n == 0) throw new DeviceException($"short read from {Path} at {offset + done}: the device ended", errno: NativeMethods.EIO);
                var errno = Marshal.GetLastPInvokeError();
                if (errno == NativeMethods.EINTR) continue;
                if (!wait && errno == NativeMethods.EAGAIN) return false;
                if (!wait && errno is NativeMethods.EOPNOTSUPP or NativeMethods.ENOSYS or NativeMethods.EINVAL)
                {
                    _noWait = false;
                    return false;
                }
                throw new DeviceException($"read of {destination.Length} bytes at offset {offset} from {Path} failed: {NativeMethods.Describe(errno)}", errno: errno);
            }
        return true;
    }

    public void Uncache(long offset, long length) => NativeMethods.PosixFadvise(_cachedFd, offset, length, NativeMethods.POSIX_FADV_DONTNEED);

    /// <summary>Makes every completed write durable (one fdatasync).</summary>
    public void Flush()
    {
        if (NativeMethods.Fdatasync(_fd) == 0) return;
        var errno = Marshal.GetLastPInvokeError();
        throw new DeviceException($"fdatasync of {Path} failed: {NativeMethods.Describe(errno)}", errno: errno);
    }

    /// <summary>
    /// Zeroes the device header and both checkpoint slot headers so the next open formats the device.
    /// Pins the device the same way Open does, so a held device is refused.
    /// </summary>
    public static void Nuke(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new DeviceException($"cannot nuke {full}: no such file or device");
        using var dev = Open(full, 0, directIo: true, log: null);
        using var page = new AlignedBuffer(AlignedBuffer.Alignment);
        var offsets = new List<long> { 0 };
        dev.Read(page.Span, 0);
        if (Format.DeviceHeader.TryDecode(page.Span, out var header, out _))
        {
            offsets.Add(header.CheckpointSlotA);
            offsets.Add(header.CheckpointSlotB);
        }
        page.Span.Clear();
        foreach (var o in offsets) dev.Write(page.Span, o);
        dev.Flush();
    }

    public void Dispose()
    {
        _cachedHandle.Dispose();
        _handle.Dispose();
    }
}
