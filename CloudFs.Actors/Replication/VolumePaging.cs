// Pages of an ordered list of volume ids: the page after a cursor is found by binary search, and one page looks at a
// bounded number of ids, so neither a message nor a step of a listing grows with the number of volumes.
namespace CloudFs.Actors.Replication;

public static class VolumePaging
{
    /// <summary>The ids after <paramref name="after"/> (null: from the first) in <paramref name="sorted"/> (ordinal order)
    /// that <paramref name="include"/> accepts: at most <paramref name="limit"/> of them, looking at no more than
    /// <paramref name="scanLimit"/> ids. <c>Next</c> is the cursor to continue from (the last id looked at), null when
    /// the end was reached; a page may be empty and still have a <c>Next</c> when the filter rejected all it looked at.</summary>
    public static (IReadOnlyList<string> Ids, string? Next) Page(string[] sorted, string? after, int limit, int scanLimit, Func<string, bool> include)
    {
        if (limit < 1) throw new ArgumentOutOfRangeException(nameof(limit), limit, "a page holds at least one volume");
        if (scanLimit < limit) throw new ArgumentOutOfRangeException(nameof(scanLimit), scanLimit, "a page looks at least at as many ids as it may hold");
        var start = 0;
        if (after is not null)
        {
            var at = Array.BinarySearch(sorted, after, StringComparer.Ordinal);
            start = at >= 0 ? at + 1 : ~at;
        }
        var ids = new List<string>(Math.Min(limit, Math.Max(0, sorted.Length - start)));
        var i = start;
        for (; i < sorted.Length && ids.Count < limit && i - start < scanLimit; i++)
            if (include(sorted[i])) ids.Add(sorted[i]);
        return (ids, i < sorted.Length ? sorted[i - 1] : null);
    }
}
