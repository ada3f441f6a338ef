// A following stream's copy of the entries its volume appends while it streams: taken on the log's completion thread
// (a memcpy into a pooled array), so a caught-up follower sends new entries without reading them back from the device.
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

internal sealed class LiveTail(Id160 volume)
{
    /// <summary>Copies kept for a follower that lags (per open stream); older ones are dropped, it reads those from the device.</summary>
    private const long MaxBytes = 4L << 20;

    private readonly Queue<(long Lsn, byte[] Array, int Length)> _entries = new();
    private readonly object _gate = new();
    private long _bytes;

    public Id160 Volume { get; } = volume;

    /// <summary>Completion thread: keeps a copy of an entry as written (segment seq included), in lsn order.</summary>
    public void Offer(long lsn, ReadOnlySpan<byte> entry)
    {
        var array = EntryBuffer.Pool.Rent(entry.Length);
        entry.CopyTo(array);
        lock (_gate)
        {
            _entries.Enqueue((lsn, array, entry.Length));
            _bytes += entry.Length;
            while (_bytes > MaxBytes && _entries.TryDequeue(out var old)) Drop(old);
        }
    }

    /// <summary>
    /// The entry with <paramref name="lsn"/> ready to stream (segment seq zeroed, header CRC resealed), or null when
    /// not kept. The caller hands the array back with <see cref="Return"/> once it is written.
    /// </summary>
    public (byte[] Array, int Length)? Take(long lsn)
    {
        (byte[] Array, int Length)? found = null;
        lock (_gate)
        {
            while (_entries.TryPeek(out var head) && head.Lsn <= lsn)
            {
                _entries.Dequeue();
                if (head.Lsn == lsn) { _bytes -= head.Length; found = (head.Array, head.Length); break; }
                Drop(head);
            }
        }
        if (found is { } f) EntryCodec.Seal(f.Array.AsSpan(0, f.Length), 0);
        return found;
    }

    /// <summary>Forgets every copy: the volume was rewound (the lsns after it will be another chain's), or the stream ended.</summary>
    public void Clear()
    {
        lock (_gate)
            while (_entries.TryDequeue(out var e)) Drop(e);
    }

    public static void Return(byte[] array) => EntryBuffer.Pool.Return(array);

    private void Drop((long Lsn, byte[] Array, int Length) e)
    {
        _bytes -= e.Length;
        EntryBuffer.Pool.Return(e.Array);
    }
}
