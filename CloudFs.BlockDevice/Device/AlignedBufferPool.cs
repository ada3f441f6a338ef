// A small pool of equally sized aligned buffers for reads, so a read does not allocate native memory per I/O.
using System.Collections.Concurrent;

namespace CloudFs.BlockDevice.Device;

internal sealed class AlignedBufferPool(int bufferSize, int maxPooled) : IDisposable
{
    private readonly ConcurrentBag<AlignedBuffer> _free = new();
    // How many buffers the bag holds (or is about to): ConcurrentBag.Count freezes the whole bag (every thread's list
    // locked), which every read's return paid under random reads.
    private int _pooled;
    private long _created;
    public int BufferSize { get; } = bufferSize;

    /// <summary>Buffers allocated so far (the pool was empty when they were asked for).</summary>
    public long Created => Interlocked.Read(ref _created);

    public AlignedBuffer Rent()
    {
        if (_free.TryTake(out var b))
        {
            Interlocked.Decrement(ref _pooled);
            return b;
        }
        Interlocked.Increment(ref _created);
        return new AlignedBuffer(BufferSize);
    }

    public void Return(AlignedBuffer buffer)
    {
        if (Interlocked.Increment(ref _pooled) <= maxPooled) _free.Add(buffer);
        else
        {
            Interlocked.Decrement(ref _pooled);
            ((IDisposable)buffer).Dispose();
        }
    }

    public void Dispose()
    {
        while (_free.TryTake(out var b)) ((IDisposable)b).Dispose();
    }
}

/// <summary>
/// Read buffers in two sizes: most reads are a few blocks (4 KiB random reads, entry headers), and renting 1 MiB for
/// each of them, with dozens in flight, allocated and freed 1 MiB native blocks past the pool's bound, which grew the
/// node's resident memory by hundreds of MiB under random reads (glibc keeps such blocks in its per-thread arenas).
/// </summary>
internal sealed class ReadBufferPool(int smallSize, int smallPooled, int largeSize, int largePooled) : IDisposable
{
    private readonly AlignedBufferPool _small = new(smallSize, smallPooled);
    private readonly AlignedBufferPool _large = new(largeSize, largePooled);

    /// <summary>A buffer of at least <paramref name="bytes"/> (at most the large size).</summary>
    public AlignedBuffer Rent(int bytes) => bytes <= _small.BufferSize ? _small.Rent() : _large.Rent();

    public void Return(AlignedBuffer buffer) => (buffer.Length == _small.BufferSize ? _small : _large).Return(buffer);

    /// <summary>Buffers of each size allocated so far.</summary>
    public (long Small, long Large) Created => (_small.Created, _large.Created);

    public void Dispose()
    {
        _small.Dispose();
        _large.Dispose();
    }
}
