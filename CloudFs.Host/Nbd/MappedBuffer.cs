// Anonymous pages from mmap, usable as Memory<byte>: unmapping gives them back to the operating system at once, which
// neither the managed heap nor malloc promise. Freed explicitly (Dispose), never by a finalizer (a Span may point in).
using System.Buffers;
using System.Runtime.InteropServices;

namespace CloudFs.Host.Nbd;

internal sealed unsafe partial class MappedBuffer : MemoryManager<byte>
{
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20;
    private static readonly nint MapFailed = -1;
    private byte* _ptr;

    public MappedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        var p = Mmap(0, (nuint)length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (p == MapFailed) throw new OutOfMemoryException($"mmap of {length} bytes failed: errno {Marshal.GetLastPInvokeError()}");
        _ptr = (byte*)p;
        Length = length;
    }

    public int Length { get; }
    public override Span<byte> GetSpan() => new(_ptr, Length);
    public override MemoryHandle Pin(int elementIndex = 0) => new(_ptr + elementIndex);
    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        if (_ptr == null) return;
        Munmap((nint)_ptr, (nuint)Length);
        _ptr = null;
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint addr, nuint length);
}
