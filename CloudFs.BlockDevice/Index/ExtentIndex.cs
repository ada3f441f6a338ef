// Per-volume map from logical 512-byte blocks to where their bytes live in the log. Soft state:
// checkpointed and rebuilt from the log. Not thread-safe: the engine serialises access per volume.
namespace CloudFs.BlockDevice.Index;

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
/// A two-level B+-tree: a root of (first start, page) pairs over leaf pages of sorted, non-overlapping extents.
/// Both levels are searched through a summary of every 16th key and then one run of 16 keys, so a random lookup
/// on a big index waits for about one cold cache line of page data (see BENCHMARKS.md). Pages are copy-on-write between an index and its snapshots: each index
/// carries an owner token, and a page whose token is not the index's own is copied before it is changed.
/// No operation writes a page or root array another index can see, so a snapshot or branch parent may be read
/// (looked up, enumerated, serialized) on other threads while the live index changes; a frozen index may even be
/// read while it is itself relocated (see <see cref="Relocate"/>). A live index needs its caller's lock.
/// </summary>
public sealed class ExtentIndex
{
    /// <summary>Extents per page: big enough that the root stays small (1 M extents → 4–8 K pages), small enough
    /// that an insert's shift and a copy-on-write page copy stay cheap (7 KiB).</summary>
    public const int DefaultPageCapacity = 256;

    private readonly int _pageCapacity;
    private readonly bool _frozen;
    private readonly ExtentIndex? _parent;
    private long _owner = NewOwner();     // the token of the pages this index may change in place
    private static long s_lastOwner;
    // Replaced whole (never changed in place) when a frozen index is relocated, so a reader that loaded it once
    // sees one consistent tree even while another thread relocates.
    private Root _root;
    private long _count;
    private int _lastPage;          // where the previous lookup started: sequential reads skip the root search

    public ExtentIndex() : this(DefaultPageCapacity) { }

    /// <summary>An empty index with leaf pages of <paramref name="pageCapacity"/> extents (tests use tiny pages).</summary>
    public ExtentIndex(int pageCapacity) : this(pageCapacity, frozen: false, parent: null) { }

    private ExtentIndex(int pageCapacity, bool frozen, ExtentIndex? parent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageCapacity, 4);
        _pageCapacity = pageCapacity;
        _frozen = frozen;
        _parent = parent;
        _root = new Root(4);
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
        var r = _root;
        if (r.N > 0)
        {
            int p = _lastPage;
            bool samePage = (uint)p < (uint)r.N && r.Keys[p] <= start && (p + 1 >= r.N || r.Keys[p + 1] > start);
            if (!samePage) _lastPage = p = FloorPage(r, start);
            int i;
            if (p < 0) { p = 0; i = 0; }
            else
            {
                var first = r.Pages[p];
                // On the page of the previous lookup (a sequential reader) its lines are cached: no prefetch.
                i = first.Floor(start, prefetchRows: !samePage);
                if (i < 0) i = 0;
                else
                {
                    first.Read(i, out long s, out int c, out long log, out long entry);
                    long e = s + c;
                    if (e >= end)
                    {
                        // The usual read: one extent covers it all. Answered without the general loop's bookkeeping,
                        // which keeps a lookup short enough for the CPU to overlap the next one's cache misses.
                        output.Add(new Extent(start, (int)(end - start), Shift(log, start - s), entry));
                        return;
                    }
                    // One block that the extent found does not cover is a hole: nothing to add unless a parent has it.
                    if (count == 1 && _parent is null) return;
                    if (e <= start) i++;
                }
            }
            for (; p < r.N; p++, i = 0)
            {
                var page = r.Pages[p];
                for (int n = page.Length; i < n; i++)
                {
                    long s = page.Start(i);
                    if (s >= end) goto done;
                    long cs = s > start ? s : start;
                    if (cs > pos && _parent is not null) _parent.Lookup(pos, cs - pos, output);
                    long e = s + page.Count(i);
                    long ce = e < end ? e : end;
                    long log = page.Log(i);
                    output.Add(new Extent(cs, (int)(ce - cs), Shift(log, cs - s), page.Entry(i)));
                    pos = ce;
                }
            }
        }
    done:
        if (pos < end && _parent is not null) _parent.Lookup(pos, end - pos, output);
    }

    /// <summary>
    /// Resolves many single blocks at once: <paramref name="results"/>[k] is what <c>Lookup(blocks[k], 1, …)</c>
    /// would append, <c>Extent(blocks[k], 1, log, entry)</c>, or for a hole (nothing appended) an empty
    /// <c>Extent(blocks[k], 0, Extent.ZeroLogBlock, 0)</c>. The blocks need not be sorted or distinct.
    /// </summary>
    /// <remarks>
    /// A random lookup on a big index waits for a cold cache line or two. One at a time they queue behind each
    /// other; here groups of blocks go through the search in lockstep stages (root, page summary, run of starts
    /// and rows), each stage prefetching what the next one reads for every block of the group, so the group's
    /// misses are outstanding together. Holes of a branch are resolved through its parent the same way.
    /// </remarks>
    public void LookupMany(ReadOnlySpan<long> blocks, Span<Extent> results)
    {
        if (results.Length < blocks.Length) throw new ArgumentException("results is shorter than blocks", nameof(results));
        Span<int> pages = stackalloc int[Group];
        Span<int> runs = stackalloc int[Group];
        for (int at = 0; at < blocks.Length; at += Group)
        {
            int n = Math.Min(Group, blocks.Length - at);
            LookupGroup(blocks.Slice(at, n), results.Slice(at, n), pages[..n], runs[..n]);
        }
    }

    /// <summary>Blocks resolved together: enough misses in flight to hide most of a memory latency, and few enough that a group's lines stay in L1.</summary>
    private const int Group = 16;

    private void LookupGroup(ReadOnlySpan<long> blocks, Span<Extent> results, Span<int> pages, Span<int> runs)
    {
        var r = _root;
        int n = blocks.Length;
        // Stage 1: the page of each block (the root's summary and key runs are small and stay cached).
        for (int k = 0; k < n; k++)
        {
            int p = r.N > 0 ? FloorPage(r, blocks[k]) : -1;
            pages[k] = p;
            if (p >= 0) r.Pages[p].PrefetchHead();
        }
        // Stage 2: the run of 16 extents within the page, from its summary; prefetches that run's starts and rows.
        for (int k = 0; k < n; k++)
            runs[k] = pages[k] >= 0 ? r.Pages[pages[k]].FindRun(blocks[k]) : -1;
        // Stage 3: the extent, and whether it covers the block.
        int holes = 0;
        for (int k = 0; k < n; k++)
        {
            long b = blocks[k];
            if (runs[k] >= 0)
            {
                var page = r.Pages[pages[k]];
                page.Read(page.FloorInRun(runs[k], b), out long s, out int c, out long log, out long entry);
                if (s + c > b)
                {
                    results[k] = new Extent(b, 1, Shift(log, b - s), entry);
                    continue;
                }
            }
            results[k] = new Extent(b, 0, Extent.ZeroLogBlock, 0);
            holes++;
        }
        if (holes == 0 || _parent is null) return;
        // A branch's holes read through to its parent: resolved there as one smaller group.
        Span<long> holeBlocks = stackalloc long[holes];
        Span<Extent> holeResults = stackalloc Extent[holes];
        for (int k = 0, h = 0; k < n; k++) if (results[k].Count == 0) holeBlocks[h++] = blocks[k];
        _parent.LookupMany(holeBlocks, holeResults);
        for (int k = 0, h = 0; k < n; k++) if (results[k].Count == 0) results[k] = holeResults[h++];
    }

    /// <summary>Number of extents held (not counting a parent's).</summary>
    public long Count => _count;

    /// <summary>Approximate bytes of memory held (not counting a parent's). Pages shared with a snapshot count in both.</summary>
    public long MemoryBytes
    {
        get
        {
            var r = _root;
            return 64 + 40 + 24L * 4 + (long)r.Keys.Length * 16 + (r.Summary.Length + r.Top.Length) * 8L + r.N * ExtentPage.BytesFor(_pageCapacity);
        }
    }

    /// <summary>A frozen copy that later changes to this index do not affect (copy-on-write; cheap).</summary>
    public ExtentIndex Snapshot()
    {
        var snap = new ExtentIndex(_pageCapacity, frozen: true, _parent)
        {
            _root = _root.Copy(extra: 0),
            _count = _count,
        };
        // Every page is now shared: a new token makes this index copy a page before its first change to it.
        _owner = NewOwner();
        return snap;
    }

    /// <summary>A writable copy of this index over the same parent (copy-on-write like a snapshot): later changes to
    /// either do not affect the other.</summary>
    public ExtentIndex Thaw()
    {
        var copy = new ExtentIndex(_pageCapacity, frozen: false, _parent)
        {
            _root = _root.Copy(extra: 0),
            _count = _count,
        };
        _owner = NewOwner();
        return copy;
    }

    /// <summary>A new empty index whose holes read through to a frozen snapshot of this one (a branch).</summary>
    public ExtentIndex Branch() => new(_pageCapacity, frozen: false, Snapshot());

    /// <summary>The frozen parent of a branch, or null.</summary>
    public ExtentIndex? Parent => _parent;

    /// <summary>Every extent of this index (not the parent's) in logical order.</summary>
    public IEnumerable<Extent> Enumerate()
    {
        var r = _root;
        for (int p = 0; p < r.N; p++)
        {
            var page = r.Pages[p];
            for (int i = 0; i < page.Length; i++)
                yield return new Extent(page.Start(i), page.Count(i), page.Log(i), page.Entry(i));
        }
    }

    /// <summary>
    /// Compaction: the parts of [start, start+count) that still map to the log blocks starting at
    /// <paramref name="oldLogBlock"/> now map to <paramref name="newLogBlock"/> (same offsets), entry <paramref name="newEntryBlock"/>.
    /// Parts overwritten since are left alone. Works on frozen snapshots too (bytes do not change, only where they live).
    /// Returns the number of blocks moved.
    /// </summary>
    /// <remarks>
    /// Every index referencing the old blocks must be relocated on its own: pages shared with other indexes are
    /// copied, never changed in place, because those indexes may be read meanwhile under other locks (a branch
    /// parent is read by the branch's volume) or on other threads (a checkpoint serialising a snapshot), and a
    /// reader must never see a half-moved extent. A frozen index is changed on a private copy of its tree that is
    /// then published whole, so any number of threads may read it during a Relocate. Blocks of the range already at
    /// the new place with the new entry count as moved, so replaying a relocation (after a crash) is harmless and
    /// reports the same number.
    /// </remarks>
    public long Relocate(long start, int count, long oldLogBlock, long newLogBlock, long newEntryBlock)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(oldLogBlock);
        ArgumentOutOfRangeException.ThrowIfNegative(newLogBlock);
        if (start > long.MaxValue - count || oldLogBlock > long.MaxValue - count || newLogBlock > long.MaxValue - count)
            throw new ArgumentOutOfRangeException(nameof(count), "range overflows");
        if (count == 0) return 0;
        // Most indexes do not reference most moved runs: find out without copying anything.
        long moved = RelocateScan(start, count, oldLogBlock, newLogBlock, newEntryBlock, apply: false);
        if (moved < 0) return ~moved;
        if (!_frozen) return RelocateScan(start, count, oldLogBlock, newLogBlock, newEntryBlock, apply: true);
        // A fresh owner token: the private copy copies every page it touches, so published pages never change.
        var work = new ExtentIndex(_pageCapacity, frozen: false, _parent) { _root = _root.Copy(extra: 4), _count = _count };
        moved = work.RelocateScan(start, count, oldLogBlock, newLogBlock, newEntryBlock, apply: true);
        Volatile.Write(ref _root, work._root);
        _count = work._count;
        return moved;
    }

    /// <summary>
    /// Without <paramref name="apply"/>: the blocks already at the new place as ~count when nothing still points at
    /// the old place, else a non-negative number. With it: moves them and returns the blocks moved.
    /// </summary>
    private long RelocateScan(long start, int count, long oldLogBlock, long newLogBlock, long newEntryBlock, bool apply)
    {
        var r = _root;
        if (r.N == 0) return ~0L;
        long end = start + count;
        long oldDelta = oldLogBlock - start, newDelta = newLogBlock - start;
        long moved = 0;
        bool any = false;
        // At most two partial pieces (the first and last overlapping extents); they need a split, done after the scan.
        long p1s = -1, p1e = -1, p2s = -1, p2e = -1;
        int p = FloorPage(r, start), i;
        if (p < 0) { p = 0; i = 0; }
        else
        {
            i = r.Pages[p].Floor(start);
            if (i < 0) i = 0;
            else if (r.Pages[p].End(i) <= start) i++;
        }
        for (; p < r.N; p++, i = 0)
        {
            var page = r.Pages[p];
            for (; i < page.Length; i++)
            {
                long s = page.Start(i);
                if (s >= end) goto scanned;
                long e = s + page.Count(i), log = page.Log(i);
                long cs = Math.Max(s, start), ce = Math.Min(e, end);
                if (log != Extent.ZeroLogBlock && log - s == newDelta && page.Entry(i) == newEntryBlock) { moved += ce - cs; continue; }
                if (log == Extent.ZeroLogBlock || log - s != oldDelta) continue;
                any = true;
                if (!apply) return 0;
                moved += ce - cs;
                if (cs == s && ce == e)
                {
                    page = Writable(p);
                    page.SetLog(i, newLogBlock + (s - start));
                    page.SetEntry(i, newEntryBlock);
                }
                else if (p1s < 0) { p1s = cs; p1e = ce; }
                else { p2s = cs; p2e = ce; }
            }
        }
    scanned:
        if (!apply) return any ? 0 : ~moved;
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
        if (_root.N == 0 || _root.Pages[_root.N - 1].Length == _pageCapacity)
            InsertPage(_root.N, new ExtentPage(_pageCapacity, _owner), start);
        var page = _root.Pages[_root.N - 1];
        page.Set(page.Length++, start, count, log, entry);
        _count++;
    }

    /// <summary>How many of this index's pages are the very same objects as <paramref name="other"/>'s (copy-on-write check).</summary>
    internal int PagesSharedWith(ExtentIndex other)
    {
        var theirs = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var o = other._root;
        var r = _root;
        for (int p = 0; p < o.N; p++) theirs.Add(o.Pages[p].Identity);
        int shared = 0;
        for (int p = 0; p < r.N; p++) if (theirs.Contains(r.Pages[p].Identity)) shared++;
        return shared;
    }

    internal int PageCount => _root.N;

    private void ThrowIfFrozen()
    {
        if (_frozen) throw new InvalidOperationException("This extent index is a frozen snapshot; only Relocate may change it.");
    }

    private static long NewOwner() => Interlocked.Increment(ref s_lastOwner);

    private static long Shift(long log, long by) => log == Extent.ZeroLogBlock ? log : log + by;

    /// <summary>Index of the last page whose first start is at or before <paramref name="key"/>, or -1.</summary>
    private static int FloorPage(Root r, long key) => r.Floor(key);

    private ExtentPage Writable(int p)
    {
        var page = _root.Pages[p];
        if (page.Owner != _owner) _root.Pages[p] = page = page.CloneFor(_owner);
        return page;
    }

    private void InsertPage(int p, ExtentPage page, long key)
    {
        if (_root.N == _root.Pages.Length)
        {
            _root.Grow();
        }
        Array.Copy(_root.Pages, p, _root.Pages, p + 1, _root.N - p);
        Array.Copy(_root.Keys, p, _root.Keys, p + 1, _root.N - p);
        _root.Pages[p] = page;
        _root.Keys[p] = key;
        _root.N++;
        _root.Resummarize(p);
    }

    private void RemovePages(int p, int k)
    {
        Array.Copy(_root.Pages, p + k, _root.Pages, p, _root.N - p - k);
        Array.Copy(_root.Keys, p + k, _root.Keys, p, _root.N - p - k);
        _root.N -= k;
        Array.Clear(_root.Pages, _root.N, k);
        _root.Resummarize(p);
    }

    private void InsertCore(long start, int count, long log, long entry)
    {
        long end = start + count;
        RemoveCore(start, end);
        int p, i;
        if (_root.N == 0)
        {
            InsertPage(0, new ExtentPage(_pageCapacity, _owner), start);
            p = 0; i = 0;
        }
        else
        {
            p = FloorPage(_root, start);
            if (p < 0) { p = 0; i = 0; }
            // RemoveCore just searched the same page: its lines are cached, no prefetch.
            else i = _root.Pages[p].Floor(start, prefetchRows: false) + 1;
        }
        var page = _root.Pages[p];
        bool mergePrev = i > 0 && Mergeable(page, i - 1, start, count, log, entry);
        bool mergeNext = i < page.Length && Mergeable(page, i, start, count, log, entry);
        if (mergePrev && mergeNext && (long)page.Count(i - 1) + count + page.Count(i) <= int.MaxValue)
        {
            page = Writable(p);
            page.SetCount(i - 1, page.Count(i - 1) + count + page.Count(i));
            page.RemoveRange(i, 1);
            _count--;
        }
        else if (mergePrev)
        {
            page = Writable(p);
            page.SetCount(i - 1, page.Count(i - 1) + count);
        }
        else if (mergeNext)
        {
            page = Writable(p);
            page.SetStart(i, start);
            page.SetCount(i, page.Count(i) + count);
            page.SetLog(i, log);
            if (i == 0) _root.SetKey(p, start);
        }
        else
        {
            InsertAt(p, i, start, count, log, entry);
        }
    }

    /// <summary>True when [start, start+count) → log joins the extent at <paramref name="j"/> in both spaces with the same entry.</summary>
    private static bool Mergeable(ExtentPage page, int j, long start, int count, long log, long entry)
    {
        page.Read(j, out long s, out int c, out long l, out long e);
        if (e != entry || (long)c + count > int.MaxValue) return false;
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
                InsertPage(p + 1, right, right.Start(0));
                _count++;
                return;
            }
            InsertPage(p + 1, right, right.Start(0));
        }
        page.InsertAt(i, start, count, log, entry);
        if (i == 0) _root.SetKey(p, start);
        _count++;
    }

    /// <summary>Makes [start, end) a hole: splits, trims and drops what overlaps.</summary>
    private void RemoveCore(long start, long end)
    {
        if (_root.N == 0) return;
        int p = FloorPage(_root, start), i;
        if (p < 0) { p = 0; i = 0; }
        else
        {
            i = _root.Pages[p].Floor(start);
            if (i < 0) i = 0;
            else if (_root.Pages[p].End(i) <= start) i++;
        }
        while (p < _root.N)
        {
            var page = _root.Pages[p];
            if (i >= page.Length) { p++; i = 0; continue; }
            long s = page.Start(i);
            if (s >= end) return;
            long e = page.End(i);
            if (s < start)
            {
                page = Writable(p);
                page.SetCount(i, (int)(start - s));
                if (e > end)
                {
                    // An overwrite inside one extent: keep its head, re-add its tail after the hole.
                    InsertAt(p, i + 1, end, (int)(e - end), Shift(page.Log(i), end - s), page.Entry(i));
                    return;
                }
                i++;
                continue;
            }
            if (e > end)
            {
                page = Writable(p);
                page.SetStart(i, end);
                page.SetCount(i, (int)(e - end));
                page.SetLog(i, Shift(page.Log(i), end - s));
                if (i == 0) _root.SetKey(p, end);
                return;
            }
            if (i == 0 && page.End(page.Length - 1) <= end)
            {
                // Whole pages inside the hole go at once.
                int q = p;
                long dropped = 0;
                while (q < _root.N && _root.Pages[q].End(_root.Pages[q].Length - 1) <= end) dropped += _root.Pages[q++].Length;
                RemovePages(p, q - p);
                _count -= dropped;
                continue;
            }
            int k = i;
            while (k < page.Length && page.End(k) <= end) k++;
            page = Writable(p);
            page.RemoveRange(i, k - i);
            _count -= k - i;
            if (i == 0) _root.SetKey(p, page.Start(0));
        }
    }

    /// <summary>
    /// The top level: each page's first start and the page, plus a summary of every 16th key and a top of every 16th
    /// summary slot. A search counts within 16 (or 32) top slots, then one run of 16 summary slots, then one run of 16
    /// keys, each with independent vector loads from arrays that stay cached: three short steps where a binary search
    /// of the summary took ~9 dependent ones. Fewer instructions per lookup also let the CPU overlap more of the
    /// next lookup's cache misses with this one's.
    /// </summary>
    private sealed class Root
    {
        private const int Run = 16;
        internal long[] Keys;           // Keys[p] == Pages[p].Start(0); capacity a multiple of 16 so any run can be read whole
        internal long[] Summary;        // Summary[j] == Keys[16·j] for 16·j < N; capacity a multiple of 16, at least 16
        internal long[] Top;            // Top[t] == Keys[256·t] for 256·t < N; empty while N ≤ 256, else at least 32
        internal ExtentPage[] Pages;
        internal int N;                 // pages in use; every page in use holds at least one extent

        internal Root(int capacity)
        {
            capacity = RoundUp(Math.Max(capacity, 1));
            Keys = new long[capacity];
            Summary = new long[SummaryFor(capacity)];
            Top = new long[TopFor(capacity)];
            Pages = new ExtentPage[capacity];
        }

        private static int RoundUp(int n) => (n + Run - 1) & ~(Run - 1);
        private static int SummaryFor(int capacity) => Math.Max(Run, RoundUp(capacity / Run));
        private static int TopFor(int capacity) => capacity <= Run * Run ? 0 : Math.Max(2 * Run, (capacity + Run * Run - 1) / (Run * Run));

        internal Root Copy(int extra)
        {
            var c = new Root(N + extra) { N = N };
            Array.Copy(Keys, c.Keys, N);
            Array.Copy(Pages, c.Pages, N);
            c.Resummarize(0);
            return c;
        }

        /// <summary>Index of the last page whose first start is at or before <paramref name="key"/>, or -1.</summary>
        internal int Floor(long key)
        {
            int n = N;
            var keys = Keys;
            var summary = Summary;
            int runs = (n + Run - 1) / Run, tops = (runs + Run - 1) / Run;
            // Every run below is read whole without bounds checks: its slots must exist whatever N says.
            if ((uint)n > (uint)keys.Length || (keys.Length & (Run - 1)) != 0 || summary.Length < Math.Max(Run, RoundUp(runs))
                || (runs > Run && Top.Length < Math.Max(2 * Run, tops)))
                throw new InvalidOperationException("Corrupt extent index root.");
            if (n == 0 || keys[0] > key) return -1;
            ref long s = ref MemoryMarshal.GetArrayDataReference(summary);
            int run;
            if (runs <= Run) run = SortedSearch.CountAtMost16(ref s, runs, key) - 1;
            else
            {
                ref long top = ref MemoryMarshal.GetArrayDataReference(Top);
                int t = tops <= 2 * Run
                    ? SortedSearch.CountAtMost16(ref top, Math.Min(Run, tops), key) + (tops > Run ? SortedSearch.CountAtMost16(ref Unsafe.Add(ref top, Run), tops - Run, key) : 0) - 1
                    : SortedSearch.Floor(ref top, tops, key);
                int firstRun = Math.Max(t, 0) * Run;
                run = firstRun + SortedSearch.CountAtMost16(ref Unsafe.Add(ref s, firstRun), Math.Min(Run, runs - firstRun), key) - 1;
            }
            int first = Math.Max(run, 0) * Run;
            return first + SortedSearch.CountAtMost16(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(keys), first), Math.Min(Run, n - first), key) - 1;
        }

        internal void SetKey(int p, long key)
        {
            Keys[p] = key;
            if (p % Run != 0) return;
            Summary[p / Run] = key;
            if (p % (Run * Run) == 0 && Top.Length > 0) Top[p / (Run * Run)] = key;
        }

        internal void Grow()
        {
            Array.Resize(ref Keys, Keys.Length * 2);
            Array.Resize(ref Pages, Pages.Length * 2);
            Array.Resize(ref Summary, SummaryFor(Keys.Length));
            Top = new long[TopFor(Keys.Length)];
            Resummarize(0);
        }

        /// <summary>Summary and top slots from the run holding page <paramref name="p"/> on (after pages moved).</summary>
        internal void Resummarize(int p)
        {
            for (int first = p / Run * Run; first < N; first += Run) Summary[first / Run] = Keys[first];
            if (Top.Length == 0) return;
            for (int first = p / (Run * Run) * (Run * Run); first < N; first += Run * Run) Top[first / (Run * Run)] = Keys[first];
        }
    }
}
