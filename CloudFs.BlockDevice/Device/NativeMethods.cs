// libc entry points the device layer needs and .NET does not expose: open with O_DIRECT/O_EXCL, flock, fdatasync, lseek,
// pread/pwrite themselves, so a failed I/O reports its errno; preadv2 and posix_fadvise for reads through the page cache.
using System.Runtime.InteropServices;

namespace CloudFs.BlockDevice.Device;

internal static partial class NativeMethods
{
    internal const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_CLOEXEC = 0x80000;
    internal const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    internal const int SEEK_END = 2;
    internal const int EINVAL = 22, EBUSY = 16, EWOULDBLOCK = 11, ENOENT = 2, EACCES = 13, EIO = 5, EINTR = 4, ENOSPC = 28;
    internal const int EAGAIN = 11, EOPNOTSUPP = 95, ENOSYS = 38;
    /// <summary>preadv2 flag: return what the page cache holds now (EAGAIN or a short count) instead of waiting for I/O.</summary>
    internal const int RWF_NOWAIT = 0x08;
    internal const int POSIX_FADV_RANDOM = 1, POSIX_FADV_DONTNEED = 4;

    /// <summary>O_DIRECT differs between architectures (x86-64 0x4000, arm64 0x10000).</summary>
    internal static int O_DIRECT => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    internal static partial int Fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    internal static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    internal static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    internal static unsafe partial nint Pwrite(int fd, byte* buffer, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    internal static unsafe partial nint Pread(int fd, byte* buffer, nint count, long offset);

    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct IoVec
    {
        public byte* Base;
        public nint Length;
    }

    [LibraryImport("libc", EntryPoint = "preadv2", SetLastError = true)]
    internal static unsafe partial nint Preadv2(int fd, IoVec* iov, int iovcnt, long offset, int flags);

    /// <summary>Returns the error number itself (0 on success); errno is not set.</summary>
    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    internal static partial int PosixFadvise(int fd, long offset, long length, int advice);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int Ftruncate(int fd, long length);

    internal static string Describe(int errno) => $"errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})";
}
