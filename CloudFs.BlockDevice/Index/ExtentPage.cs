// A leaf page of the extent index: a summary of every 16th start and the sorted starts in one dense array (what the
// search reads), the rest of each extent in one 20-byte row. Copy-on-write: a page belongs to its owner token's index.
namespace CloudFs.BlockDevice.Index;

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

internal sealed class ExtentPage
{
    // 28 bytes per extent with no padding, plus one summary slot per 16. A random lookup on a big index is bound by
    // cache misses, not instructions: the summary (a page's first two lines) stays cached, so the search waits for
    // one run of 16 starts (two adjacent lines, loaded together) instead of the tail of eight dependent binary-search
    // probes; the extent found then needs its count, log block and entry block, which a row keeps in one cache line
    // (two adjacent ones at worst) where three columns cost three cold lines and three array headers.
    private const int RowBytes = 20, CountAt = 0, LogAt = 4, EntryAt = 12;
    private const int Run = 16;
    // _starts holds the summary first (slot j = start of extent 16·j, kept for 16·j < Length; at least 16 slots so
    // one vector count reads them all), then the starts from _at on, room rounded up to 16 so any run reads whole.
    private readonly long[] _starts;
    private readonly int _at;
    private readonly int _capacity;
    private readonly byte[] _rows;
    internal int Length;
    internal readonly long Owner;

    internal ExtentPage(int capacity, long owner)
    {
        _at = Math.Max(Run, (capacity + Run - 1) / Run);
        _capacity = capacity;
        _starts = new long[_at + ((capacity + Run - 1) & ~(Run - 1))];
        _rows = new byte[capacity * RowBytes];
        Owner = owner;
    }

    /// <summary>Approximate bytes of one page of <paramref name="capacity"/> extents: the object, its starts (with summary) and rows.</summary>
    internal static long BytesFor(int capacity) =>
        56 + 24 + 8L * (Math.Max(Run, (capacity + Run - 1) / Run) + ((capacity + Run - 1) & ~(Run - 1))) + 24 + (long)RowBytes * capacity;

    internal int Capacity => _capacity;
    internal object Identity => this;

    internal long Start(int i) => _starts[_at + i];
    internal int Count(int i) => BinaryPrimitives.ReadInt32LittleEndian(Row(i, CountAt));
    internal long Log(int i) => BinaryPrimitives.ReadInt64LittleEndian(Row(i, LogAt));
    internal long Entry(int i) => BinaryPrimitives.ReadInt64LittleEndian(Row(i, EntryAt));
    internal long End(int i) => Start(i) + Count(i);

    internal void SetStart(int i, long v)
    {
        _starts[_at + i] = v;
        if (i % Run == 0) _starts[i / Run] = v;
    }

    internal void SetCount(int i, int v) => BinaryPrimitives.WriteInt32LittleEndian(Row(i, CountAt), v);
    internal void SetLog(int i, long v) => BinaryPrimitives.WriteInt64LittleEndian(Row(i, LogAt), v);
    internal void SetEntry(int i, long v) => BinaryPrimitives.WriteInt64LittleEndian(Row(i, EntryAt), v);

    private Span<byte> Row(int i, int field) => _rows.AsSpan(i * RowBytes + field, RowBytes - field);

    internal ExtentPage CloneFor(long owner)
    {
        var p = new ExtentPage(Capacity, owner) { Length = Length };
        Array.Copy(_starts, p._starts, _at + Length);
        Array.Copy(_rows, p._rows, Length * RowBytes);
        return p;
    }

    /// <summary>Index of the last extent starting at or before <paramref name="key"/>, or -1.</summary>
    internal int Floor(long key)
    {
        int n = Length;
        var a = _starts;
        if ((uint)n > (uint)_capacity || a.Length < _at + ((n + Run - 1) & ~(Run - 1))) throw new InvalidOperationException("Corrupt extent page.");
        if (n == 0 || a[0] > key) return -1;
        int runs = (n + Run - 1) / Run;
        ref long r = ref MemoryMarshal.GetArrayDataReference(a);
        int run = runs <= Run ? SortedSearch.CountAtMost16(ref r, runs, key) - 1 : SortedSearch.Floor(ref r, runs, key);
        int first = run * Run;
        PrefetchRows(first);
        return first + SortedSearch.CountAtMost16(ref Unsafe.Add(ref r, _at + first), Math.Min(Run, n - first), key) - 1;
    }

    /// <summary>
    /// Asks for the rows of the 16 extents from <paramref name="first"/> while their starts are being loaded: the
    /// row the search picks is then already on its way instead of a second cold miss after the first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void PrefetchRows(int first)
    {
        if (!Sse.IsSupported) return;
        // A prefetch never faults, and a stale address (the GC moved the array meanwhile) only makes it useless.
        byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_rows)) + first * RowBytes;
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        Sse.Prefetch0(p + 128);
        Sse.Prefetch0(p + 192);
        Sse.Prefetch0(p + 256);
        Sse.Prefetch0(p + Run * RowBytes - 1);
    }

    private void Resummarize(int i)
    {
        for (int first = i / Run * Run; first < Length; first += Run) _starts[first / Run] = _starts[_at + first];
    }

    internal void Set(int i, long start, int count, long log, long entry)
    {
        SetStart(i, start);
        SetCount(i, count);
        SetLog(i, log);
        SetEntry(i, entry);
    }

    internal void InsertAt(int i, long start, int count, long log, long entry)
    {
        int tail = Length - i;
        if (tail > 0)
        {
            Array.Copy(_starts, _at + i, _starts, _at + i + 1, tail);
            Array.Copy(_rows, i * RowBytes, _rows, (i + 1) * RowBytes, tail * RowBytes);
        }
        Length++;
        Set(i, start, count, log, entry);
        Resummarize(i);
    }

    internal void RemoveRange(int i, int n)
    {
        int tail = Length - i - n;
        if (tail > 0)
        {
            Array.Copy(_starts, _at + i + n, _starts, _at + i, tail);
            Array.Copy(_rows, (i + n) * RowBytes, _rows, i * RowBytes, tail * RowBytes);
        }
        Length -= n;
        Resummarize(i);
    }

    internal void MoveTailTo(int from, ExtentPage to)
    {
        int n = Length - from;
        Array.Copy(_starts, _at + from, to._starts, to._at, n);
        Array.Copy(_rows, from * RowBytes, to._rows, 0, n * RowBytes);
        to.Length = n;
        Length = from;
        to.Resummarize(0);
    }
}
