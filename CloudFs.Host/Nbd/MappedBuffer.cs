// Anonymous pages from mmap (AnonymousPages), usable as Memory<byte>: unmapping gives them back to the operating system
// at once, which neither the managed heap nor malloc promise. Freed explicitly (Dispose), never by a finalizer (a Span
// may point in).
using System.Buffers;
using CloudFs.BlockDevice.Device;

namespace CloudFs.Host.Nbd;

internal sealed unsafe class MappedBuffer : MemoryManager<byte>
{
    private byte* _ptr;

    public MappedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        _ptr = AnonymousPages.Map((nuint)length);
        Length = length;
    }

    public int Length { get; }
    public override Span<byte> GetSpan() => new(_ptr, Length);
    public override MemoryHandle Pin(int elementIndex = 0) => new(_ptr + elementIndex);
    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        if (_ptr == null) return;
        AnonymousPages.Unmap(_ptr, (nuint)Length);
        _ptr = null;
    }
}
