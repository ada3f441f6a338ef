// A native buffer aligned for O_DIRECT (4 KiB), usable as Span/Memory; freed explicitly (Dispose), never by a finalizer
// (a finalizer could free memory a Span still points to).
using System.Buffers;
using System.Runtime.InteropServices;

namespace CloudFs.BlockDevice.Device;

internal sealed unsafe class AlignedBuffer : MemoryManager<byte>
{
    public const int Alignment = 4096;
    private byte* _ptr;

    public AlignedBuffer(int length)
    {
        if (length <= 0 || length % Alignment != 0) throw new ArgumentOutOfRangeException(nameof(length), "aligned buffers are whole 4 KiB pages");
        _ptr = (byte*)NativeMemory.AlignedAlloc((nuint)length, Alignment);
        NativeMemory.Clear(_ptr, (nuint)length);
        Length = length;
    }

    public int Length { get; }
    public Span<byte> Span => new(_ptr, Length);
    public override Span<byte> GetSpan() => new(_ptr, Length);
    public override MemoryHandle Pin(int elementIndex = 0) => new(_ptr + elementIndex);
    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        if (_ptr != null) { NativeMemory.AlignedFree(_ptr); _ptr = null; }
    }
}
