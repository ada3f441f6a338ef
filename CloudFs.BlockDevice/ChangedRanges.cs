// What `cloudfs diff` and the NBD context cloudfs:changed-since report: the byte ranges of a volume that may differ
// between two versions (written with data, zeroes or trims in between), merged and in offset order.
namespace CloudFs.BlockDevice;

/// <summary>The ranges changed between <paramref name="From"/> and <paramref name="To"/> of <paramref name="Volume"/>.</summary>
/// <param name="Ranges">Disjoint, non-adjacent, in offset order, 512-aligned.</param>
public sealed record ChangedRanges(Id160 Volume, Id160 From, Id160 To, IReadOnlyList<ChangedRange> Ranges)
{
    /// <summary>The sum of the ranges' lengths.</summary>
    public long Bytes { get; } = Ranges.Sum(r => r.Length);
}

/// <summary>One changed byte range.</summary>
public readonly record struct ChangedRange(long Offset, long Length)
{
    public long End => Offset + Length;
}
