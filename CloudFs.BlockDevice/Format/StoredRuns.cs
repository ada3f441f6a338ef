// The runs of a data-like entry's blocks that it stores and that it leaves out (all zeros), in order, read from the
// header's bit vector a 64-bit word at a time: the one walk of the bit vector that indexing an entry (LogStore.Commit)
// and restoring a lost one (Repair/EntryRestoration.cs) share.
using System.Buffers.Binary;
using System.Numerics;

namespace CloudFs.BlockDevice.Format;

/// <summary>Blocks [First, First+Count) of an entry (relative to its first block), all stored or all not; the stored
/// ones are the entry's stored blocks [StoredIndex, StoredIndex+Count).</summary>
internal readonly record struct StoredRun(int First, int Count, bool Stored, int StoredIndex);

/// <summary>Enumerates an entry's <see cref="StoredRun"/>s without allocating: <c>foreach (var run in new StoredRuns(header, count))</c>.</summary>
internal ref struct StoredRuns
{
    private readonly ReadOnlySpan<byte> _bitmap;
    private readonly int _count;
    private int _next;
    private int _stored;

    /// <param name="header">The entry's header sector (its bit vector at <see cref="EntryHeader.OffBitmap"/>).</param>
    /// <param name="blockCount">The blocks the entry covers (at most 8 × <see cref="EntryHeader.BitmapBytes"/>).</param>
    public StoredRuns(ReadOnlySpan<byte> header, int blockCount)
    {
        _bitmap = header.Slice(EntryHeader.OffBitmap, EntryHeader.BitmapBytes);
        _count = blockCount;
    }

    public StoredRun Current { get; private set; }

    public readonly StoredRuns GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_next >= _count) return false;
        var first = _next;
        var stored = (_bitmap[first >> 3] & (1 << (first & 7))) != 0;
        var end = EndOfRun(first, stored);
        Current = new StoredRun(first, end - first, stored, _stored);
        if (stored) _stored += end - first;
        _next = end;
        return true;
    }

    /// <summary>The first block after <paramref name="from"/> whose bit differs from <paramref name="stored"/> (or the count).</summary>
    private readonly int EndOfRun(int from, bool stored)
    {
        for (var word = from >> 6; word << 6 < _count; word++)
        {
            // Bit i of the vector is bit i % 64 of little-endian word i / 64.
            var bits = BinaryPrimitives.ReadUInt64LittleEndian(_bitmap.Slice(word << 3, 8));
            if (stored) bits = ~bits;
            if (word == from >> 6) bits &= ulong.MaxValue << (from & 63);
            if (bits != 0) return Math.Min(_count, (word << 6) + BitOperations.TrailingZeroCount(bits));
        }
        return _count;
    }
}
