// A small pool of equally sized aligned buffers for reads, so a read does not allocate native memory per I/O.
using System.Collections.Concurrent;

namespace CloudFs.BlockDevice.Device;

internal sealed class AlignedBufferPool(int bufferSize, int maxPooled) : IDisposable
{
    private readonly ConcurrentBag<AlignedBuffer> _free = new();
    public int BufferSize { get; } = bufferSize;

    public AlignedBuffer Rent() => _free.TryTake(out var b) ? b : new AlignedBuffer(BufferSize);

    public void Return(AlignedBuffer buffer)
    {
        if (_free.Count < maxPooled) _free.Add(buffer);
        else ((IDisposable)buffer).Dispose();
    }

    public void Dispose()
    {
        while (_free.TryTake(out var b)) ((IDisposable)b).Dispose();
    }
}
