// The NBD server's payload buffers. Small ones come from the shared array pool; large ones (1 MiB and up, to 32 MiB) are
// mapped pages kept for reuse only up to a bound: a burst of big requests, or clients that stall mid-payload and are
// dropped, give their memory back to the operating system instead of leaving the node's footprint at its peak.
using System.Buffers;

namespace CloudFs.Host.Nbd;

internal sealed class PayloadBufferPool(long retainBytes)
{
    /// <summary>Payloads this large or larger use mapped pages; smaller ones the shared array pool.</summary>
    public const int MappedThreshold = 1 << 20;
    private const int SmallestClassShift = 20;
    private const int Classes = 6; // 1, 2, 4, 8, 16, 32 MiB

    private readonly Stack<MappedBuffer>[] _free = Enumerable.Range(0, Classes).Select(_ => new Stack<MappedBuffer>()).ToArray();
    private long _retained;
    private long _mapped;

    /// <summary>Bytes of mapped buffers kept for reuse while no request holds them.</summary>
    public long RetainedBytes => Interlocked.Read(ref _retained);
    /// <summary>Bytes of mapped buffers that exist, held or kept.</summary>
    public long MappedBytes => Interlocked.Read(ref _mapped);

    public PayloadBuffer Rent(int length)
    {
        if (length < MappedThreshold) return new PayloadBuffer(ArrayPool<byte>.Shared.Rent(length), null, length);
        int cls = ClassOf(length);
        if (cls >= Classes) throw new ArgumentOutOfRangeException(nameof(length), $"a payload of {length} bytes is larger than any NBD request may be");
        MappedBuffer? buffer = null;
        lock (_free)
        {
            if (_free[cls].TryPop(out buffer)) _retained -= buffer.Length;
        }
        if (buffer is null)
        {
            buffer = new MappedBuffer(1 << (cls + SmallestClassShift));
            Interlocked.Add(ref _mapped, buffer.Length);
        }
        return new PayloadBuffer(null, buffer, length);
    }

    /// <summary>Takes a buffer back; <paramref name="keep"/> false (a dropped connection) unmaps a large one at once.</summary>
    public void Return(PayloadBuffer payload, bool keep = true)
    {
        if (payload.Array is { } array) { ArrayPool<byte>.Shared.Return(array); return; }
        if (payload.Mapped is not { } buffer) return;
        if (keep)
        {
            lock (_free)
            {
                if (_retained + buffer.Length <= retainBytes)
                {
                    _free[ClassOf(buffer.Length)].Push(buffer);
                    _retained += buffer.Length;
                    return;
                }
            }
        }
        Interlocked.Add(ref _mapped, -buffer.Length);
        ((IDisposable)buffer).Dispose();
    }

    /// <summary>Unmaps every kept buffer (the server stops).</summary>
    public void Clear()
    {
        lock (_free)
        {
            foreach (var stack in _free)
                while (stack.TryPop(out var buffer))
                {
                    _retained -= buffer.Length;
                    Interlocked.Add(ref _mapped, -buffer.Length);
                    ((IDisposable)buffer).Dispose();
                }
        }
    }

    private static int ClassOf(int length) => Math.Max(0, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(length - 1)) - SmallestClassShift);
}

/// <summary>One rented payload buffer: an array from the shared pool or mapped pages, and the bytes in use.</summary>
internal readonly record struct PayloadBuffer(byte[]? Array, MappedBuffer? Mapped, int Length)
{
    public Memory<byte> Memory => Array is not null ? Array.AsMemory(0, Length) : Mapped is not null ? Mapped.Memory[..Length] : Memory<byte>.Empty;
    public Span<byte> Span => Memory.Span;
}
