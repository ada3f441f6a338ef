// A native buffer aligned for O_DIRECT (4 KiB), usable as Span/Memory; freed explicitly (Dispose), never by a finalizer
// (a finalizer could free memory a Span still points to). Buffers from 128 KiB up are pages of their own (mmap), given
// back to the system when freed (AnonymousPages); smaller ones come from malloc.
using System.Buffers;
using System.Runtime.InteropServices;

namespace CloudFs.BlockDevice.Device;

internal sealed unsafe class AlignedBuffer : MemoryManager<byte>
{
    public const int Alignment = 4096;
    /// <summary>From this size up a buffer is mapped pages (malloc's own default threshold for that).</summary>
    public const int MappedFrom = 128 << 10;
    private byte* _ptr;

    public AlignedBuffer(int length)
    {
        if (length <= 0 || length % Alignment != 0) throw new ArgumentOutOfRangeException(nameof(length), "aligned buffers are whole 4 KiB pages");
        if (length >= MappedFrom) _ptr = AnonymousPages.Map((nuint)length);
        else
        {
            _ptr = (byte*)NativeMemory.AlignedAlloc((nuint)length, Alignment);
            NativeMemory.Clear(_ptr, (nuint)length);
        }
        Length = length;
    }

    public int Length { get; }
    public Span<byte> Span => new(_ptr, Length);
    public override Span<byte> GetSpan() => new(_ptr, Length);
    public override MemoryHandle Pin(int elementIndex = 0) => new(_ptr + elementIndex);
    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        if (_ptr == null) return;
        if (Length >= MappedFrom) AnonymousPages.Unmap(_ptr, (nuint)Length);
        else NativeMemory.AlignedFree(_ptr);
        _ptr = null;
    }
}
