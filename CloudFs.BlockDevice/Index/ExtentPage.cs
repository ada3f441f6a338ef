// A leaf page of the extent index: sorted, non-overlapping extents stored column-wise so the binary
// search on starts touches one dense array. Copy-on-write: a page belongs to the index whose token it carries.
namespace CloudFs.BlockDevice.Index;

internal sealed class ExtentPage
{
    // Columns rather than an array of Extent: 28 bytes per extent with no padding, and the
    // search only reads Starts.
    private readonly long[] _starts;
    private readonly int[] _counts;
    private readonly long[] _logs;
    private readonly long[] _entries;
    internal int Length;
    internal readonly long Owner;

    internal ExtentPage(int capacity, long owner)
    {
        _starts = new long[capacity];
        _counts = new int[capacity];
        _logs = new long[capacity];
        _entries = new long[capacity];
        Owner = owner;
    }

    internal int Capacity => _starts.Length;
    internal object Identity => this;

    internal long Start(int i) => _starts[i];
    internal int Count(int i) => _counts[i];
    internal long Log(int i) => _logs[i];
    internal long Entry(int i) => _entries[i];
    internal long End(int i) => _starts[i] + _counts[i];
    internal void SetStart(int i, long v) => _starts[i] = v;
    internal void SetCount(int i, int v) => _counts[i] = v;
    internal void SetLog(int i, long v) => _logs[i] = v;
    internal void SetEntry(int i, long v) => _entries[i] = v;

    internal ExtentPage CloneFor(long owner)
    {
        var p = new ExtentPage(Capacity, owner) { Length = Length };
        Array.Copy(_starts, p._starts, Length);
        Array.Copy(_counts, p._counts, Length);
        Array.Copy(_logs, p._logs, Length);
        Array.Copy(_entries, p._entries, Length);
        return p;
    }

    /// <summary>Index of the last extent starting at or before <paramref name="key"/>, or -1.</summary>
    internal int Floor(long key) => SortedSearch.Floor(_starts, Length, key);

    internal void Set(int i, long start, int count, long log, long entry)
    {
        _starts[i] = start;
        _counts[i] = count;
        _logs[i] = log;
        _entries[i] = entry;
    }

    internal void InsertAt(int i, long start, int count, long log, long entry)
    {
        int tail = Length - i;
        if (tail > 0)
        {
            Array.Copy(_starts, i, _starts, i + 1, tail);
            Array.Copy(_counts, i, _counts, i + 1, tail);
            Array.Copy(_logs, i, _logs, i + 1, tail);
            Array.Copy(_entries, i, _entries, i + 1, tail);
        }
        Set(i, start, count, log, entry);
        Length++;
    }

    internal void RemoveRange(int i, int n)
    {
        int tail = Length - i - n;
        if (tail > 0)
        {
            Array.Copy(_starts, i + n, _starts, i, tail);
            Array.Copy(_counts, i + n, _counts, i, tail);
            Array.Copy(_logs, i + n, _logs, i, tail);
            Array.Copy(_entries, i + n, _entries, i, tail);
        }
        Length -= n;
    }

    internal void MoveTailTo(int from, ExtentPage to)
    {
        int n = Length - from;
        Array.Copy(_starts, from, to._starts, 0, n);
        Array.Copy(_counts, from, to._counts, 0, n);
        Array.Copy(_logs, from, to._logs, 0, n);
        Array.Copy(_entries, from, to._entries, 0, n);
        to.Length = n;
        Length = from;
    }
}
