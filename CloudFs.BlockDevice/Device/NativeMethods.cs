// libc entry points the device layer needs and .NET does not expose: open with O_DIRECT/O_EXCL, flock, fdatasync, lseek,
// and pread/pwrite themselves, so a failed I/O reports its errno.
using System.Runtime.InteropServices;

namespace CloudFs.BlockDevice.Device;

internal static partial class NativeMethods
{
    internal const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_CLOEXEC = 0x80000;
    internal const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    internal const int SEEK_END = 2;
    internal const int EINVAL = 22, EBUSY = 16, EWOULDBLOCK = 11, ENOENT = 2, EACCES = 13, EIO = 5, EINTR = 4, ENOSPC = 28;

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

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int Ftruncate(int fd, long length);

    internal static string Describe(int errno) => $"errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})";
}
