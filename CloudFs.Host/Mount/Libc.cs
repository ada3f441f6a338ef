// The few system calls `cloudfs mount` needs that .NET does not wrap: the FUSE device, mount(2) and umount2(2).
using System.Runtime.InteropServices;

namespace CloudFs.Host.Mount;

internal static partial class Libc
{
    public const int ORdWr = 2;
    public const int OCloExec = 0x80000;
    public const ulong MsNoSuid = 2;
    public const ulong MsNoDev = 4;
    public const int MntDetach = 2;
    public const int EIntr = 4;
    public const int ENoEnt = 2;
    public const int ENoDev = 19;
    public const int EAgain = 11;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static unsafe partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static unsafe partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);
}
