// A leaf page of the extent index: sorted, non-overlapping extents stored column-wise so the binary
// search on starts touches one dense array. Copy-on-write: a page belongs to the index whose token it carries.
namespace CloudFs.BlockDevice.Index;

internal sealed class ExtentPage
{
    // Columns rather than an array of Extent: 28 bytes per extent with no padding, and the
    // search only reads Starts.
    internal readonly long[] Starts;
    internal readonly int[] Counts;
    internal readonly long[] Logs;
    internal readonly long[] Entries;
    internal int Length;
    internal readonly object Owner;

    internal ExtentPage(int capacity, object owner)
    {
        Starts = new long[capacity];
        Counts = new int[capacity];
        Logs = new long[capacity];
        Entries = new long[capacity];
        Owner = owner;
    }

    internal int Capacity => Starts.Length;

    internal long End(int i) => Starts[i] + Counts[i];

    internal ExtentPage CloneFor(object owner)
    {
        var p = new ExtentPage(Capacity, owner) { Length = Length };
        Array.Copy(Starts, p.Starts, Length);
        Array.Copy(Counts, p.Counts, Length);
        Array.Copy(Logs, p.Logs, Length);
        Array.Copy(Entries, p.Entries, Length);
        return p;
    }

    /// <summary>Index of the last extent starting at or before <paramref name="key"/>, or -1.</summary>
    internal int Floor(long key)
    {
        return SortedSearch.Floor(Starts, Length, key);
    }

    internal void Set(int i, long start, int count, long log, long entry)
    {
        Starts[i] = start;
        Counts[i] = count;
        Logs[i] = log;
        Entries[i] = entry;
    }

    internal void InsertAt(int i, long start, int count, long log, long entry)
    {
        int tail = Length - i;
        if (tail > 0)
        {
            Array.Copy(Starts, i, Starts, i + 1, tail);
            Array.Copy(Counts, i, Counts, i + 1, tail);
            Array.Copy(Logs, i, Logs, i + 1, tail);
            Array.Copy(Entries, i, Entries, i + 1, tail);
        }
        Set(i, start, count, log, entry);
        Length++;
    }

    internal void RemoveRange(int i, int n)
    {
        int tail = Length - i - n;
        if (tail > 0)
        {
            Array.Copy(Starts, i + n, Starts, i, tail);
            Array.Copy(Counts, i + n, Counts, i, tail);
            Array.Copy(Logs, i + n, Logs, i, tail);
            Array.Copy(Entries, i + n, Entries, i, tail);
        }
        Length -= n;
    }

    /// <summary>Moves the extents from <paramref name="from"/> on to the (empty) page <paramref name="to"/>.</summary>
    internal void MoveTailTo(int from, ExtentPage to)
    {
        int n = Length - from;
        Array.Copy(Starts, from, to.Starts, 0, n);
        Array.Copy(Counts, from, to.Counts, 0, n);
        Array.Copy(Logs, from, to.Logs, 0, n);
        Array.Copy(Entries, from, to.Entries, 0, n);
        to.Length = n;
        Length = from;
    }
}
