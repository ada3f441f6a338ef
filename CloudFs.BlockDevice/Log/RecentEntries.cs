// The last entries of a volume that someone follows, kept in stream form (segment seq zeroed, header CRC resealed) in
// pooled arrays from the moment the writer places them: a replica fed by the writer (even before this host's own write
// of the entry completes), or a live stream (StreamAsync with follow), that keeps up is served from memory instead of
// reading each entry back from the device (two direct reads per entry).
using System.Buffers;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

internal sealed class RecentEntries
{
    /// <summary>Bytes of entries kept; a follower further behind reads the older ones from the device. Copies every
    /// replica holds durably are dropped sooner (<see cref="DropThrough"/>), so an idle replicated volume keeps none.
    /// Enough for a client's 16 writes of 1 MiB in flight: entries are kept from the moment they are placed, and with
    /// less they were dropped before the feed took them, then read back from the device once written.</summary>
    private const long MaxBytes = 16L << 20;

    // A ring of consecutive lsns: _ring[(_start + i) % Length] holds lsn _firstLsn + i, in an array of EntryBuffer.Pool
    // (returned when dropped). Readers copy out under the lock.
    private (byte[] Array, int Length)[] _ring = new (byte[], int)[64];
    private int _start, _count;
    private long _firstLsn;
    private long _bytes;
    private readonly object _gate = new();

    /// <summary>Writer thread, in lsn order: keeps a stream-form copy of the entry just placed in the log (its own
    /// write to the device follows; readers only take lsns beyond the volume's head when they ask for unwritten ones).</summary>
    public void Offer(long lsn, ReadOnlySpan<byte> entry)
    {
        var copy = EntryBuffer.Pool.Rent(entry.Length);
        entry.CopyTo(copy);
        EntryCodec.Seal(copy.AsSpan(0, entry.Length), 0);
        lock (_gate)
        {
            // Only consecutive lsns are kept (after a rewind the lsns that follow are another chain's).
            if (_count > 0 && lsn != _firstLsn + _count) Reset();
            if (_count == 0) _firstLsn = lsn;
            if (_count == _ring.Length) Grow();
            _ring[(_start + _count) % _ring.Length] = (copy, entry.Length);
            _count++;
            _bytes += entry.Length;
            while (_bytes > MaxBytes && _count > 1) DropOldest();
        }
    }

    /// <summary>The length of the entry with <paramref name="lsn"/> when it is kept.</summary>
    public int? LengthOf(long lsn)
    {
        lock (_gate) return Find(lsn) is { } i ? _ring[i].Length : null;
    }

    /// <summary>Appends the stream form of the entry with <paramref name="lsn"/> to <paramref name="output"/>; false when it is not kept.</summary>
    public bool CopyTo(long lsn, IBufferWriter<byte> output)
    {
        lock (_gate)
        {
            if (Find(lsn) is not { } i) return false;
            output.Write(_ring[i].Array.AsSpan(0, _ring[i].Length));
            return true;
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

    private int? Find(long lsn) =>
        _count == 0 || lsn < _firstLsn || lsn >= _firstLsn + _count ? null : (int)((_start + (lsn - _firstLsn)) % _ring.Length);

    private void DropOldest()
    {
        _bytes -= _ring[_start].Length;
        EntryBuffer.Pool.Return(_ring[_start].Array);
        _ring[_start] = default;
        _start = (_start + 1) % _ring.Length;
        _count--;
        _firstLsn++;
    }

    private void Reset()
    {
        while (_count > 0) DropOldest();
        _start = 0;
    }

    private void Grow()
    {
        var bigger = new (byte[], int)[_ring.Length * 2];
        for (var i = 0; i < _count; i++) bigger[i] = _ring[(_start + i) % _ring.Length];
        _ring = bigger;
        _start = 0;
    }
}
