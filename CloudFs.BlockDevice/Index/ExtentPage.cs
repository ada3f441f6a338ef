// A leaf page of the extent index, all in one long[]: a small header, a summary of every 16th start, the sorted starts
// (what the search reads), then the rest of each extent in one 20-byte row. Copy-on-write: a page belongs to its owner token's index.
namespace CloudFs.BlockDevice.Index;

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

/// <summary>
/// A handle on a page's one array. One array rather than an object holding arrays: a random lookup goes from the
/// root straight to the page's summary (the array's first lines) without first waiting for an object's fields.
/// </summary>
internal readonly struct ExtentPage
{
    // 28 bytes per extent with no padding, plus one summary slot per 16. A random lookup on a big index is bound by
    // cache misses, not instructions: the summary (the array's first lines) stays cached, so the search waits for
    // one run of 16 starts (two adjacent lines, loaded together) while the rows of that run are prefetched; the
    // extent found needs its count, log block and entry block, which a row keeps in one cache line (two at worst)
    // where three columns cost three cold lines.
    private const int RowBytes = 20, CountAt = 0, LogAt = 4, EntryAt = 12;
    private const int Run = 16;
    // Header slots, then the summary from slot Header (slot Header + j = start of extent 16·j, kept for 16·j < Length;
    // at least 16 slots so one vector count reads them all), then the starts from StartsAt on (room rounded up to 16
    // so any run reads whole), then the rows from RowsAt on as bytes.
    private const int LengthSlot = 0, OwnerSlot = 1, CapacitySlot = 2, StartsAtSlot = 3, RowsAtSlot = 4, Header = 5;
    private readonly long[] _a;

    internal ExtentPage(int capacity, long owner)
    {
        int summary = SummarySlots(capacity);
        int startsAt = Header + summary, rowsAt = startsAt + RoundUp(capacity);
        _a = new long[rowsAt + (capacity * RowBytes + 7) / 8];
        _a[OwnerSlot] = owner;
        _a[CapacitySlot] = capacity;
        _a[StartsAtSlot] = startsAt;
        _a[RowsAtSlot] = rowsAt;
    }

    private static int SummarySlots(int capacity) => Math.Max(Run, (capacity + Run - 1) / Run);
    private static int RoundUp(int n) => (n + Run - 1) & ~(Run - 1);

    /// <summary>Approximate bytes of one page of <paramref name="capacity"/> extents: its one array.</summary>
    internal static long BytesFor(int capacity) =>
        24 + 8L * (Header + SummarySlots(capacity) + RoundUp(capacity) + (capacity * RowBytes + 7) / 8);

    internal int Length
    {
        get => (int)_a[LengthSlot];
        set => _a[LengthSlot] = value;
    }

    internal long Owner => _a[OwnerSlot];
    internal int Capacity => (int)_a[CapacitySlot];
    private int StartsAt => (int)_a[StartsAtSlot];
    private int RowsAt => (int)_a[RowsAtSlot];
    internal object Identity => _a;

    internal long Start(int i) => _a[StartsAt + i];
    internal int Count(int i) => BinaryPrimitives.ReadInt32LittleEndian(Row(i, CountAt));
    internal long Log(int i) => BinaryPrimitives.ReadInt64LittleEndian(Row(i, LogAt));
    internal long Entry(int i) => BinaryPrimitives.ReadInt64LittleEndian(Row(i, EntryAt));
    internal long End(int i) => Start(i) + Count(i);

    internal void SetStart(int i, long v)
    {
        _a[StartsAt + i] = v;
        if (i % Run == 0) _a[Header + i / Run] = v;
    }

    internal void SetCount(int i, int v) => BinaryPrimitives.WriteInt32LittleEndian(Row(i, CountAt), v);
    internal void SetLog(int i, long v) => BinaryPrimitives.WriteInt64LittleEndian(Row(i, LogAt), v);
    internal void SetEntry(int i, long v) => BinaryPrimitives.WriteInt64LittleEndian(Row(i, EntryAt), v);

    private Span<byte> Rows => MemoryMarshal.AsBytes(_a.AsSpan(RowsAt));
    private Span<byte> Row(int i, int field) => Rows.Slice(i * RowBytes + field, RowBytes - field);

    internal ExtentPage CloneFor(long owner)
    {
        var p = new ExtentPage(Capacity, owner) { Length = Length };
        Array.Copy(_a, Header, p._a, Header, StartsAt - Header + Length);
        Rows[..(Length * RowBytes)].CopyTo(p.Rows);
        return p;
    }

    /// <summary>Index of the last extent starting at or before <paramref name="key"/>, or -1.</summary>
    internal int Floor(long key)
    {
        var a = _a;
        int n = (int)a[LengthSlot], startsAt = (int)a[StartsAtSlot], rowsAt = (int)a[RowsAtSlot];
        // The slots a search reads must exist whatever the header says (the runs are read without bounds checks).
        if ((uint)n > (uint)(rowsAt - startsAt) || (uint)startsAt < Header + Run || (uint)rowsAt > (uint)a.Length
            || rowsAt - startsAt < RoundUp(n) || (long)n * RowBytes > (a.Length - (long)rowsAt) * 8)
            throw new InvalidOperationException("Corrupt extent page.");
        if (n == 0 || a[startsAt] > key) return -1;
        int runs = (n + Run - 1) / Run;
        ref long r = ref MemoryMarshal.GetArrayDataReference(a);
        ref long summary = ref Unsafe.Add(ref r, Header);
        if (runs > startsAt - Header) throw new InvalidOperationException("Corrupt extent page.");
        int run = runs <= Run ? SortedSearch.CountAtMost16(ref summary, runs, key) - 1 : SortedSearch.Floor(ref summary, runs, key);
        int first = run * Run;
        PrefetchRows(ref Unsafe.Add(ref r, rowsAt), first);
        return first + SortedSearch.CountAtMost16(ref Unsafe.Add(ref r, startsAt + first), Math.Min(Run, n - first), key) - 1;
    }

    /// <summary>
    /// Asks for the rows of the 16 extents from <paramref name="first"/> while their starts are being loaded: the
    /// row the search picks is then already on its way instead of a second cold miss after the first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchRows(ref long rows, int first)
    {
        if (!Sse.IsSupported) return;
        // A prefetch never faults, and a stale address (the GC moved the array meanwhile) only makes it useless.
        byte* p = (byte*)Unsafe.AsPointer(ref rows) + first * RowBytes;
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        Sse.Prefetch0(p + 128);
        Sse.Prefetch0(p + 192);
        Sse.Prefetch0(p + 256);
        Sse.Prefetch0(p + Run * RowBytes - 1);
    }

    private void Resummarize(int i)
    {
        int startsAt = StartsAt, n = Length;
        for (int first = i / Run * Run; first < n; first += Run) _a[Header + first / Run] = _a[startsAt + first];
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
            Array.Copy(_a, StartsAt + i, _a, StartsAt + i + 1, tail);
            var rows = Rows;
            rows.Slice(i * RowBytes, tail * RowBytes).CopyTo(rows[((i + 1) * RowBytes)..]);
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
            Array.Copy(_a, StartsAt + i + n, _a, StartsAt + i, tail);
            var rows = Rows;
            rows.Slice((i + n) * RowBytes, tail * RowBytes).CopyTo(rows[(i * RowBytes)..]);
        }
        Length -= n;
        Resummarize(i);
    }

    internal void MoveTailTo(int from, ExtentPage to)
    {
        int n = Length - from;
        Array.Copy(_a, StartsAt + from, to._a, to.StartsAt, n);
        Rows.Slice(from * RowBytes, n * RowBytes).CopyTo(to.Rows);
        to.Length = n;
        Length = from;
        to.Resummarize(0);
    }
}
