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

    /// <summary>Extent <paramref name="i"/> whole, with one bounds check per array (a lookup's last step reads all of it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Read(int i, out long start, out int count, out long log, out long entry)
    {
        var a = _a;
        start = a[(int)a[StartsAtSlot] + i];
        var row = MemoryMarshal.AsBytes(a.AsSpan()).Slice((int)a[RowsAtSlot] * sizeof(long) + i * RowBytes, RowBytes);
        count = BinaryPrimitives.ReadInt32LittleEndian(row);
        log = BinaryPrimitives.ReadInt64LittleEndian(row[LogAt..]);
        entry = BinaryPrimitives.ReadInt64LittleEndian(row[EntryAt..]);
    }

    internal void SetStart(int i, long v)
    {
        _a[StartsAt + i] = v;
        if (i % Run == 0) _a[Header + i / Run] = v;
    }

    internal void SetCount(int i, int v) => BinaryPrimitives.WriteInt32LittleEndian(Row(i, CountAt), v);
    internal void SetLog(int i, long v) => BinaryPrimitives.WriteInt64LittleEndian(Row(i, LogAt), v);
    internal void SetEntry(int i, long v) => BinaryPrimitives.WriteInt64LittleEndian(Row(i, EntryAt), v);

    private Span<byte> Rows => MemoryMarshal.AsBytes(_a.AsSpan(RowsAt));
    private Span<byte> Row(int i, int field) => MemoryMarshal.AsBytes(_a.AsSpan()).Slice(RowsAt * sizeof(long) + i * RowBytes + field, RowBytes - field);

    internal ExtentPage CloneFor(long owner)
    {
        var p = new ExtentPage(Capacity, owner) { Length = Length };
        Array.Copy(_a, Header, p._a, Header, StartsAt - Header + Length);
        Rows[..(Length * RowBytes)].CopyTo(p.Rows);
        return p;
    }

    /// <summary>Index of the last extent starting at or before <paramref name="key"/>, or -1.</summary>
    internal int Floor(long key) => Floor(key, prefetchRows: true);

    /// <summary>The same, asking for the rows of the run searched (worth it unless the page was just read).</summary>
    internal int Floor(long key, bool prefetchRows)
    {
        var a = _a;
        int n = (int)a[LengthSlot], startsAt = (int)a[StartsAtSlot];
        if (n <= 0 || a[startsAt] > key) return -1;
        int first = RunOf(a, n, key);
        // The row the search picks is then on its way while the starts are compared, not a second miss after them.
        if (prefetchRows) Prefetch(a, (long)a[RowsAtSlot] * sizeof(long) + first * RowBytes, Run * RowBytes);
        return FloorIn(a, n, startsAt, first, key);
    }

    /// <summary>
    /// The first of the 16 extents whose run holds the floor of <paramref name="key"/> (found in the summary), or -1
    /// when every extent starts after it; asks for that run's starts and rows, which <see cref="FloorInRun"/> reads.
    /// A batched lookup runs this for many keys before finishing any, so their cache misses overlap.
    /// </summary>
    internal int FindRun(long key)
    {
        var a = _a;
        int n = (int)a[LengthSlot], startsAt = (int)a[StartsAtSlot];
        if (n <= 0 || a[startsAt] > key) return -1;
        int first = RunOf(a, n, key);
        Prefetch(a, ((long)startsAt + first) * sizeof(long), Run * sizeof(long));
        Prefetch(a, (long)a[RowsAtSlot] * sizeof(long) + first * RowBytes, Run * RowBytes);
        return first;
    }

    /// <summary>Index of the last extent starting at or before <paramref name="key"/>, given its run from <see cref="FindRun"/>.</summary>
    internal int FloorInRun(int first, long key) => FloorIn(_a, (int)_a[LengthSlot], (int)_a[StartsAtSlot], first, key);

    /// <summary>Asks for the page's header and summary (the first lines of its array), which a search reads first.</summary>
    internal void PrefetchHead() => Prefetch(_a, 0, (Header + Run) * sizeof(long));

    /// <summary>The first extent of the run of 16 that holds the floor of <paramref name="key"/> (≥ the page's first start).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RunOf(long[] a, int n, long key)
    {
        int runs = (n + Run - 1) / Run;
        // The summary is read without bounds checks (16 slots at once when there are at most 16 runs).
        if ((uint)(Header + Math.Max(runs, Run)) > (uint)a.Length) throw Corrupt();
        ref long summary = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), Header);
        int run = runs <= Run ? SortedSearch.CountAtMost16(ref summary, runs, key) - 1 : SortedSearch.Floor(ref summary, runs, key);
        return run * Run;
    }

    /// <summary>The floor of <paramref name="key"/> within the run of 16 starts from <paramref name="first"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FloorIn(long[] a, int n, int startsAt, int first, long key)
    {
        // The run is read whole without bounds checks: its 16 slots must exist whatever the header says.
        if (first < 0 || first >= n || startsAt < 0 || (long)startsAt + first + Run > a.Length) throw Corrupt();
        ref long starts = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), startsAt + first);
        return first + SortedSearch.CountAtMost16(ref starts, Math.Min(Run, n - first), key) - 1;
    }

    private static InvalidOperationException Corrupt() => new("Corrupt extent page.");

    /// <summary>
    /// Prefetches the cache lines of <paramref name="bytes"/> (≤ 320) bytes at byte <paramref name="offset"/> of the
    /// array's data. A prefetch never faults, and a stale address (the GC moved the array meanwhile) only makes it useless.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch(long[] a, long offset, int bytes)
    {
        if (!Sse.IsSupported) return;
        byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(a)) + offset;
        // Unrolled (bytes is a constant where this is inlined): lines 64 apart from p, and the one holding the last byte.
        Sse.Prefetch0(p);
        if (bytes > 64) Sse.Prefetch0(p + 64);
        if (bytes > 128) Sse.Prefetch0(p + 128);
        if (bytes > 192) Sse.Prefetch0(p + 192);
        if (bytes > 256) Sse.Prefetch0(p + 256);
        Sse.Prefetch0(p + bytes - 1);
    }

    private void Resummarize(int i)
    {
        int startsAt = StartsAt, n = Length;
        for (int first = i / Run * Run; first < n; first += Run) _a[Header + first / Run] = _a[startsAt + first];
    }

    internal void Set(int i, long start, int count, long log, long entry)
    {
        SetStart(i, start);
        var row = MemoryMarshal.AsBytes(_a.AsSpan()).Slice(RowsAt * sizeof(long) + i * RowBytes, RowBytes);
        BinaryPrimitives.WriteInt32LittleEndian(row, count);
        BinaryPrimitives.WriteInt64LittleEndian(row[LogAt..], log);
        BinaryPrimitives.WriteInt64LittleEndian(row[EntryAt..], entry);
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
