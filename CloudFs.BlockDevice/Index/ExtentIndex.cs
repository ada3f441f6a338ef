// Per-volume map from logical 512-byte blocks to where their bytes live in the log. Soft state:
// checkpointed and rebuilt from the log. Not thread-safe: the engine serialises access per volume.
namespace CloudFs.BlockDevice.Index;

/// <summary>
/// One run of logical blocks [Start, Start+Count) whose bytes are the consecutive log blocks starting at
/// <see cref="LogBlock"/>, stored by the entry whose header is at log block <see cref="EntryBlock"/>
/// (where the engine finds the blocks' checksums). <see cref="LogBlock"/> == <see cref="ZeroLogBlock"/>:
/// the run was explicitly zeroed (reads as zeros and hides a branch parent's data).
/// </summary>
public readonly record struct Extent(long Start, int Count, long LogBlock, long EntryBlock)
{
    public const long ZeroLogBlock = -1;
    public bool IsZero => LogBlock == ZeroLogBlock;
    public long End => Start + Count;
}

/// <summary>
/// A two-level B+-tree: a root of (first start, page) pairs searched by binary search, over leaf pages of
/// sorted, non-overlapping extents. Pages are copy-on-write between an index and its snapshots: each index
/// carries an owner token, and a page whose token is not the index's own is copied before it is changed.
/// </summary>
public sealed class ExtentIndex
{
    /// <summary>Extents per page: big enough that the root stays small (1 M extents → ~4 K pages), small enough
    /// that an insert's shift and a copy-on-write page copy stay cheap (7 KiB).</summary>
    public const int DefaultPageCapacity = 256;

    private readonly int _pageCapacity;
    private readonly bool _frozen;
    private readonly ExtentIndex? _parent;
    private object _owner = new();
    private long[] _keys;           // _keys[p] == _pages[p].Starts[0]
    private ExtentPage[] _pages;
    private int _n;                 // pages in use; every page in use holds at least one extent
    private long _count;

    public ExtentIndex() : this(DefaultPageCapacity) { }

    /// <summary>An empty index with leaf pages of <paramref name="pageCapacity"/> extents (tests use tiny pages).</summary>
    public ExtentIndex(int pageCapacity) : this(pageCapacity, frozen: false, parent: null) { }

    private ExtentIndex(int pageCapacity, bool frozen, ExtentIndex? parent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageCapacity, 4);
        _pageCapacity = pageCapacity;
        _frozen = frozen;
        _parent = parent;
        _keys = new long[4];
        _pages = new ExtentPage[4];
    }

    /// <summary>True for snapshots (and branch parents): Insert and Remove refuse, Relocate still works.</summary>
    public bool IsFrozen => _frozen;

    /// <summary>Maps [start, start+count) to log blocks, replacing whatever overlapped (older extents are split or trimmed).</summary>
    public void Insert(long start, int count, long logBlock, long entryBlock)
    {
        ThrowIfFrozen();
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(logBlock, Extent.ZeroLogBlock);
        if (start > long.MaxValue - count) throw new ArgumentOutOfRangeException(nameof(count), "start + count overflows");
        if (logBlock > long.MaxValue - count) throw new ArgumentOutOfRangeException(nameof(logBlock), "logBlock + count overflows");
        if (count == 0) return;
        InsertCore(start, count, logBlock, entryBlock);
    }

    /// <summary>Makes [start, start+count) a hole (unwritten; a branch falls through to its parent there).</summary>
    public void Remove(long start, long count)
    {
        ThrowIfFrozen();
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0) return;
        long end = start > long.MaxValue - count ? long.MaxValue : start + count;
        RemoveCore(start, end);
    }

    /// <summary>
    /// Appends to <paramref name="output"/>, in order, the extents covering [start, start+count), clipped to it.
    /// Gaps are holes. For a branch, gaps are resolved through the frozen parent.
    /// </summary>
    public void Lookup(long start, long count, List<Extent> output)
    {
        if (count <= 0) return;
        long end = start > long.MaxValue - count ? long.MaxValue : start + count;
        long pos = start;
        if (_n > 0)
        {
            int p = FloorPage(start);
            int i;
            if (p < 0) { p = 0; i = 0; }
            else
            {
                var first = _pages[p];
                i = first.Floor(start);
                if (i < 0) i = 0;
                else if (first.End(i) <= start) i++;
            }
            for (; p < _n; p++, i = 0)
            {
                var page = _pages[p];
                var starts = page.Starts;
                for (; i < page.Length; i++)
                {
                    long s = starts[i];
                    if (s >= end) goto done;
                    long cs = s > start ? s : start;
                    if (cs > pos && _parent is not null) _parent.Lookup(pos, cs - pos, output);
                    long e = s + page.Counts[i];
                    long ce = e < end ? e : end;
                    long log = page.Logs[i];
                    output.Add(new Extent(cs, (int)(ce - cs), Shift(log, cs - s), page.Entries[i]));
                    pos = ce;
                }
            }
        }
    done:
        if (pos < end && _parent is not null) _parent.Lookup(pos, end - pos, output);
    }

    /// <summary>Number of extents held (not counting a parent's).</summary>
    public long Count => _count;

    /// <summary>Approximate bytes of memory held (not counting a parent's). Pages shared with a snapshot count in both.</summary>
    public long MemoryBytes =>
        64 + 24L * 2 + (long)_keys.Length * 16 + (long)_n * (48 + 4 * 24 + (long)_pageCapacity * (8 + 4 + 8 + 8));

    /// <summary>A frozen copy that later changes to this index do not affect (copy-on-write; cheap).</summary>
    public ExtentIndex Snapshot()
    {
        var snap = new ExtentIndex(_pageCapacity, frozen: true, _parent)
        {
            _keys = _keys.AsSpan(0, Math.Max(_n, 1)).ToArray(),
            _pages = _pages.AsSpan(0, Math.Max(_n, 1)).ToArray(),
            _n = _n,
            _count = _count,
        };
        // Every page is now shared: a new token makes this index copy a page before its first change to it.
        _owner = new object();
        return snap;
    }

    /// <summary>A new empty index whose holes read through to a frozen snapshot of this one (a branch).</summary>
    public ExtentIndex Branch() => new(_pageCapacity, frozen: false, Snapshot());

    /// <summary>The frozen parent of a branch, or null.</summary>
    public ExtentIndex? Parent => _parent;

    /// <summary>Every extent of this index (not the parent's) in logical order.</summary>
    public IEnumerable<Extent> Enumerate()
    {
        for (int p = 0; p < _n; p++)
        {
            var page = _pages[p];
            for (int i = 0; i < page.Length; i++)
                yield return new Extent(page.Starts[i], page.Counts[i], page.Logs[i], page.Entries[i]);
        }
    }

    /// <summary>
    /// Compaction: the parts of [start, start+count) that still map to the log blocks starting at
    /// <paramref name="oldLogBlock"/> now map to <paramref name="newLogBlock"/> (same offsets), entry <paramref name="newEntryBlock"/>.
    /// Parts overwritten since are left alone. Works on frozen snapshots too (bytes do not change, only where they live).
    /// Returns the number of blocks moved.
    /// </summary>
    /// <remarks>
    /// A whole extent in a page shared with other indexes (snapshots, branch parents) is updated in place, for all
    /// of them at once: a shared page means they all map those blocks to the same old place, and the bytes at the
    /// new place are the same. Only splitting an extent copies the page first. So that the result does not depend
    /// on sharing, blocks of the range already at the new place (with the new entry) count as moved too:
    /// relocating every index that references the old blocks, in any order, gives each its full count.
    /// </remarks>
    public long Relocate(long start, int count, long oldLogBlock, long newLogBlock, long newEntryBlock)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(oldLogBlock);
        ArgumentOutOfRangeException.ThrowIfNegative(newLogBlock);
        if (start > long.MaxValue - count || oldLogBlock > long.MaxValue - count || newLogBlock > long.MaxValue - count)
            throw new ArgumentOutOfRangeException(nameof(count), "range overflows");
        if (count == 0 || _n == 0) return 0;
        long end = start + count;
        long oldDelta = oldLogBlock - start, newDelta = newLogBlock - start;
        long moved = 0;
        // At most two partial pieces (the first and last overlapping extents); they need a split, done after the scan.
        long p1s = -1, p1e = -1, p2s = -1, p2e = -1;
        int p = FloorPage(start), i;
        if (p < 0) { p = 0; i = 0; }
        else
        {
            i = _pages[p].Floor(start);
            if (i < 0) i = 0;
            else if (_pages[p].End(i) <= start) i++;
        }
        for (; p < _n; p++, i = 0)
        {
            var page = _pages[p];
            for (; i < page.Length; i++)
            {
                long s = page.Starts[i];
                if (s >= end) goto scanned;
                long e = s + page.Counts[i], log = page.Logs[i];
                long cs = Math.Max(s, start), ce = Math.Min(e, end);
                if (log != Extent.ZeroLogBlock && log - s == newDelta && page.Entries[i] == newEntryBlock) { moved += ce - cs; continue; }
                if (log == Extent.ZeroLogBlock || log - s != oldDelta) continue;
                moved += ce - cs;
                if (cs == s && ce == e)
                {
                    page.Logs[i] = newLogBlock + (s - start);
                    page.Entries[i] = newEntryBlock;
                }
                else if (p1s < 0) { p1s = cs; p1e = ce; }
                else { p2s = cs; p2e = ce; }
            }
        }
    scanned:
        if (p1s >= 0) InsertCore(p1s, (int)(p1e - p1s), newLogBlock + (p1s - start), newEntryBlock);
        if (p2s >= 0) InsertCore(p2s, (int)(p2e - p2s), newLogBlock + (p2s - start), newEntryBlock);
        return moved;
    }

    /// <summary>Compact binary form for checkpoints (little-endian, documented in docs/FORMAT.md).</summary>
    public void WriteTo(System.Buffers.IBufferWriter<byte> output) => ExtentIndexFormat.Write(this, output);

    public static ExtentIndex ReadFrom(ReadOnlySpan<byte> input, out int consumed) => ExtentIndexFormat.Read(input, out consumed);

    // ---- internals -------------------------------------------------------------------------------------------

    /// <summary>Appends an extent after every extent held (used by ReadFrom; the caller guarantees order).</summary>
    internal void AppendSorted(long start, int count, long log, long entry)
    {
        if (_n == 0 || _pages[_n - 1].Length == _pageCapacity)
            InsertPage(_n, new ExtentPage(_pageCapacity, _owner), start);
        var page = _pages[_n - 1];
        page.Set(page.Length++, start, count, log, entry);
        _count++;
    }

    /// <summary>How many of this index's pages are the very same objects as <paramref name="other"/>'s (copy-on-write check).</summary>
    internal int PagesSharedWith(ExtentIndex other)
    {
        var theirs = new HashSet<ExtentPage>(ReferenceEqualityComparer.Instance);
        for (int p = 0; p < other._n; p++) theirs.Add(other._pages[p]);
        int shared = 0;
        for (int p = 0; p < _n; p++) if (theirs.Contains(_pages[p])) shared++;
        return shared;
    }

    internal int PageCount => _n;

    private void ThrowIfFrozen()
    {
        if (_frozen) throw new InvalidOperationException("This extent index is a frozen snapshot; only Relocate may change it.");
    }

    private static long Shift(long log, long by) => log == Extent.ZeroLogBlock ? log : log + by;

    /// <summary>Index of the last page whose first start is at or before <paramref name="key"/>, or -1.</summary>
    private int FloorPage(long key)
    {
        int r = _keys.AsSpan(0, _n).BinarySearch(key);
        return r >= 0 ? r : ~r - 1;
    }

    private ExtentPage Writable(int p)
    {
        var page = _pages[p];
        if (!ReferenceEquals(page.Owner, _owner)) _pages[p] = page = page.CloneFor(_owner);
        return page;
    }

    private void InsertPage(int p, ExtentPage page, long key)
    {
        if (_n == _pages.Length)
        {
            Array.Resize(ref _pages, _n * 2);
            Array.Resize(ref _keys, _n * 2);
        }
        Array.Copy(_pages, p, _pages, p + 1, _n - p);
        Array.Copy(_keys, p, _keys, p + 1, _n - p);
        _pages[p] = page;
        _keys[p] = key;
        _n++;
    }

    private void RemovePages(int p, int k)
    {
        Array.Copy(_pages, p + k, _pages, p, _n - p - k);
        Array.Copy(_keys, p + k, _keys, p, _n - p - k);
        _n -= k;
        Array.Clear(_pages, _n, k);
    }

    private void InsertCore(long start, int count, long log, long entry)
    {
        long end = start + count;
        RemoveCore(start, end);
        int p, i;
        if (_n == 0)
        {
            InsertPage(0, new ExtentPage(_pageCapacity, _owner), start);
            p = 0; i = 0;
        }
        else
        {
            p = FloorPage(start);
            if (p < 0) { p = 0; i = 0; }
            else i = _pages[p].Floor(start) + 1;
        }
        var page = _pages[p];
        bool mergePrev = i > 0 && Mergeable(page, i - 1, start, count, log, entry);
        bool mergeNext = i < page.Length && Mergeable(page, i, start, count, log, entry);
        if (mergePrev && mergeNext && (long)page.Counts[i - 1] + count + page.Counts[i] <= int.MaxValue)
        {
            page = Writable(p);
            page.Counts[i - 1] += count + page.Counts[i];
            page.RemoveRange(i, 1);
            _count--;
        }
        else if (mergePrev)
        {
            Writable(p).Counts[i - 1] += count;
        }
        else if (mergeNext)
        {
            page = Writable(p);
            page.Starts[i] = start;
            page.Counts[i] += count;
            page.Logs[i] = log;
            if (i == 0) _keys[p] = start;
        }
        else
        {
            InsertAt(p, i, start, count, log, entry);
        }
    }

    /// <summary>True when [start, start+count) → log joins the extent at <paramref name="j"/> in both spaces with the same entry.</summary>
    private static bool Mergeable(ExtentPage page, int j, long start, int count, long log, long entry)
    {
        if (page.Entries[j] != entry) return false;
        long s = page.Starts[j], l = page.Logs[j];
        int c = page.Counts[j];
        if ((long)c + count > int.MaxValue) return false;
        if (s + c == start) return log == Extent.ZeroLogBlock ? l == Extent.ZeroLogBlock : l != Extent.ZeroLogBlock && l + c == log;
        if (start + count == s) return log == Extent.ZeroLogBlock ? l == Extent.ZeroLogBlock : l != Extent.ZeroLogBlock && log + count == l;
        return false;
    }

    private void InsertAt(int p, int i, long start, int count, long log, long entry)
    {
        var page = Writable(p);
        if (page.Length == _pageCapacity)
        {
            // Appending at a page's end (sequential writes) leaves the page full; otherwise split it in half.
            int keep = i == _pageCapacity ? _pageCapacity : _pageCapacity / 2;
            var right = new ExtentPage(_pageCapacity, _owner);
            page.MoveTailTo(keep, right);
            if (i >= keep && (i > keep || keep == _pageCapacity))
            {
                // The new extent goes to the right page; it becomes its first extent when i == keep.
                right.InsertAt(i - keep, start, count, log, entry);
                InsertPage(p + 1, right, right.Starts[0]);
                _count++;
                return;
            }
            InsertPage(p + 1, right, right.Starts[0]);
        }
        page.InsertAt(i, start, count, log, entry);
        if (i == 0) _keys[p] = start;
        _count++;
    }

    /// <summary>Makes [start, end) a hole: splits, trims and drops what overlaps.</summary>
    private void RemoveCore(long start, long end)
    {
        if (_n == 0) return;
        int p = FloorPage(start), i;
        if (p < 0) { p = 0; i = 0; }
        else
        {
            i = _pages[p].Floor(start);
            if (i < 0) i = 0;
            else if (_pages[p].End(i) <= start) i++;
        }
        while (p < _n)
        {
            var page = _pages[p];
            if (i >= page.Length) { p++; i = 0; continue; }
            long s = page.Starts[i];
            if (s >= end) return;
            long e = page.End(i);
            if (s < start)
            {
                page = Writable(p);
                page.Counts[i] = (int)(start - s);
                if (e > end)
                {
                    // An overwrite inside one extent: keep its head, re-add its tail after the hole.
                    InsertAt(p, i + 1, end, (int)(e - end), Shift(page.Logs[i], end - s), page.Entries[i]);
                    return;
                }
                i++;
                continue;
            }
            if (e > end)
            {
                page = Writable(p);
                page.Starts[i] = end;
                page.Counts[i] = (int)(e - end);
                page.Logs[i] = Shift(page.Logs[i], end - s);
                if (i == 0) _keys[p] = end;
                return;
            }
            if (i == 0 && page.End(page.Length - 1) <= end)
            {
                // Whole pages inside the hole go at once.
                int q = p;
                long dropped = 0;
                while (q < _n && _pages[q].End(_pages[q].Length - 1) <= end) dropped += _pages[q++].Length;
                RemovePages(p, q - p);
                _count -= dropped;
                continue;
            }
            int k = i;
            while (k < page.Length && page.End(k) <= end) k++;
            page = Writable(p);
            page.RemoveRange(i, k - i);
            _count -= k - i;
            if (i == 0) _keys[p] = page.Starts[0];
        }
    }
}
