// Reply to ChangedSince: the changed ranges inside the asked window, in offset order, clipped to it, and the version they
// go up to (the Until asked, or the current version the query resolved) with the volume's size there.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record ChangedSinceResult(IReadOnlyList<ChangedRange> Ranges) : IVolumeProtocolMessage
{
    /// <summary>The version the ranges go up to: the query's Until, or the volume's current version when it named none
    /// (a caller that asks again with it gets ranges of the same diff however the volume moved on). Zero from a node
    /// that predates it.</summary>
    public Id160 To { get; init; }
    /// <summary>The volume's size at <see cref="To"/>.</summary>
    public long ToSizeBytes { get; init; }

    /// <summary>The ranges of <paramref name="diff"/> that meet [offset, offset+length), clipped to it, with its To.</summary>
    public static ChangedSinceResult Window(ChangedRanges diff, long offset, long length) =>
        Window(diff.Ranges, offset, length) with { To = diff.To, ToSizeBytes = diff.ToSizeBytes };

    /// <summary>The ranges of <paramref name="all"/> (sorted, disjoint) that meet [offset, offset+length), clipped to it.</summary>
    public static ChangedSinceResult Window(IReadOnlyList<ChangedRange> all, long offset, long length)
    {
        var end = offset + length;
        var list = new List<ChangedRange>();
        // The first range that ends after offset, by binary search: a window is small next to a long diff.
        int lo = 0, hi = all.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (all[mid].End <= offset) lo = mid + 1; else hi = mid;
        }
        for (var i = lo; i < all.Count && all[i].Offset < end; i++)
        {
            var start = Math.Max(all[i].Offset, offset);
            list.Add(new ChangedRange(start, Math.Min(all[i].End, end) - start));
        }
        return new ChangedSinceResult(list);
    }
}
