// Anonymous pages straight from mmap: unmapping gives them back to the operating system at once. malloc does not
// promise that: glibc serves a large block from a thread's arena once a block of that size was freed (its mmap
// threshold rises to it), and keeps the freed memory there, so buffers of a few MiB allocated and freed now and then
// (checkpoints, compaction and diff reads, NBD payloads) grew a node's resident memory by ~100 MiB per benchmark round.
using System.Runtime.InteropServices;

namespace CloudFs.BlockDevice.Device;

public static unsafe partial class AnonymousPages
{
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20;
    private static readonly nint MapFailed = -1;

    /// <summary>Zeroed, page-aligned memory of <paramref name="length"/> bytes, until <see cref="Unmap"/>.</summary>
    public static byte* Map(nuint length)
    {
        var p = Mmap(0, length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (p == MapFailed) throw new OutOfMemoryException($"mmap of {length} bytes failed: errno {Marshal.GetLastPInvokeError()}");
        return (byte*)p;
    }

    public static void Unmap(byte* pages, nuint length) => Munmap((nint)pages, length);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint addr, nuint length);
}
