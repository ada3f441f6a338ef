// The last entries a replicated volume's writer appended, kept in stream form (segment seq zeroed, header CRC
// resealed) once a replica pulls the volume: a replica that keeps up is served from memory, not by reading each entry
// back from the device (two direct reads per entry, the cost that dominated a sync write's round trip).
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

internal sealed class RecentEntries
{
    /// <summary>Bytes of entries kept; a replica further behind reads the older ones from the device. Copies every
    /// replica holds durably are dropped sooner (<see cref="DropThrough"/>), so an idle volume costs nothing.</summary>
    private const long MaxBytes = 4L << 20;

    // A ring of consecutive lsns: _ring[(_start + i) % Length] holds lsn _firstLsn + i. The arrays are never changed
    // once kept, so a reader may use one after the lock is released.
    private byte[][] _ring = new byte[64][];
    private int _start, _count;
    private long _firstLsn;
    private long _bytes;
    private readonly object _gate = new();

    /// <summary>Completion thread, in lsn order: keeps a stream-form copy of the entry just written.</summary>
    public void Offer(long lsn, ReadOnlySpan<byte> entry)
    {
        var copy = entry.ToArray();
        EntryCodec.Seal(copy, 0);
        lock (_gate)
        {
            // Only consecutive lsns are kept (after a rewind the lsns that follow are another chain's).
            if (_count > 0 && lsn != _firstLsn + _count) Reset();
            if (_count == 0) _firstLsn = lsn;
            if (_count == _ring.Length) Grow();
            _ring[(_start + _count) % _ring.Length] = copy;
            _count++;
            _bytes += copy.Length;
            while (_bytes > MaxBytes && _count > 1) DropOldest();
        }
    }

    /// <summary>The stream form of the entry with <paramref name="lsn"/>, or null when it is not kept.</summary>
    public byte[]? Get(long lsn)
    {
        lock (_gate)
        {
            if (_count == 0 || lsn < _firstLsn || lsn >= _firstLsn + _count) return null;
            return _ring[(_start + (int)(lsn - _firstLsn)) % _ring.Length];
        }
    }

    /// <summary>Forgets the copies of lsns up to <paramref name="lsn"/> (every replica holds them).</summary>
    public void DropThrough(long lsn)
    {
        lock (_gate)
            while (_count > 0 && _firstLsn <= lsn) DropOldest();
    }

    /// <summary>Forgets every copy (the volume was rewound: the lsns after the kept entry will be another chain's).</summary>
    public void Clear()
    {
        lock (_gate) Reset();
    }

    private void DropOldest()
    {
        _bytes -= _ring[_start].Length;
        _ring[_start] = null!;
        _start = (_start + 1) % _ring.Length;
        _count--;
        _firstLsn++;
    }

    private void Reset()
    {
        Array.Clear(_ring);
        _start = _count = 0;
        _bytes = 0;
    }

    private void Grow()
    {
        var bigger = new byte[_ring.Length * 2][];
        for (var i = 0; i < _count; i++) bigger[i] = _ring[(_start + i) % _ring.Length];
        _ring = bigger;
        _start = 0;
    }
}
