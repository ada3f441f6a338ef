// A following stream's copy of the entries its volume appends while it streams: taken on the log's completion thread
// (a memcpy), so a caught-up follower sends new entries without reading them back from the device.
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

internal sealed class LiveTail(Id160 volume)
{
    /// <summary>Copies kept for a follower that lags; older ones are dropped (it reads those from the device).</summary>
    private const long MaxBytes = 8L << 20;

    private readonly Queue<(long Lsn, byte[] Entry)> _entries = new();
    private readonly object _gate = new();
    private long _bytes;

    public Id160 Volume { get; } = volume;

    /// <summary>Completion thread: keeps a copy of an entry as written (segment seq included), in lsn order.</summary>
    public void Offer(long lsn, ReadOnlySpan<byte> entry)
    {
        var copy = entry.ToArray();
        lock (_gate)
        {
            _entries.Enqueue((lsn, copy));
            _bytes += copy.Length;
            while (_bytes > MaxBytes && _entries.TryDequeue(out var old)) _bytes -= old.Entry.Length;
        }
    }

    /// <summary>Forgets every copy: the volume was rewound, and the lsns after it will be another chain's entries.</summary>
    public void Clear()
    {
        lock (_gate) { _entries.Clear(); _bytes = 0; }
    }

    /// <summary>The entry with <paramref name="lsn"/> ready to stream (segment seq zeroed, header CRC resealed), or null when not kept.</summary>
    public byte[]? Take(long lsn)
    {
        byte[]? entry = null;
        lock (_gate)
        {
            while (_entries.TryPeek(out var head) && head.Lsn <= lsn)
            {
                _entries.Dequeue();
                _bytes -= head.Entry.Length;
                if (head.Lsn == lsn) { entry = head.Entry; break; }
            }
        }
        if (entry is not null) EntryCodec.Seal(entry, 0);
        return entry;
    }
}
