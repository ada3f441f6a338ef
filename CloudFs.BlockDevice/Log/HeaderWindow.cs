// Reads entry headers through a window of nearby log: a volume's entries sit mostly in log order, so rebuilding its
// index from its headers (a fork split, a branch of an old version) takes one device read per window, not per entry.
using CloudFs.BlockDevice.Device;

namespace CloudFs.BlockDevice.Log;

internal sealed class HeaderWindow(ILogDevice device, int maxMeta) : IDisposable
{
    private const int WindowBytes = 256 << 10;
    private readonly AlignedBuffer _buffer = new(WindowBytes);
    private long _start = -1;
    private int _length;

    /// <summary>The log from <paramref name="entryBlock"/>: maxMeta bytes (fewer only at the end of the device).</summary>
    public ReadOnlySpan<byte> At(long entryBlock)
    {
        var offset = entryBlock * LogStore.BlockSize;
        if (_start < 0 || offset < _start || offset + maxMeta > _start + _length)
        {
            _start = offset & ~(long)(AlignedBuffer.Alignment - 1);
            _length = (int)Math.Min(WindowBytes, device.Size - _start);
            device.Read(_buffer.Span[.._length], _start);
        }
        var rel = (int)(offset - _start);
        return _buffer.Span.Slice(rel, Math.Min(maxMeta, _length - rel));
    }

    public void Dispose() => ((IDisposable)_buffer).Dispose();
}
