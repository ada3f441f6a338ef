// What `cloudfs diff` and the NBD context cloudfs:changed-since report: the byte ranges of a volume that may differ
// between two versions (written with data, zeroes or trims in between), merged and in offset order.
namespace CloudFs.BlockDevice;

/// <summary>The ranges changed between <paramref name="From"/> and <paramref name="To"/> of <paramref name="Volume"/>.</summary>
/// <param name="Ranges">Disjoint, non-adjacent, in offset order, 512-aligned, within the larger of the two versions'
/// sizes: past <see cref="ToSizeBytes"/> a range was dropped by a shrink (it no longer exists in To).</param>
public sealed record ChangedRanges(Id160 Volume, Id160 From, Id160 To, IReadOnlyList<ChangedRange> Ranges)
{
    /// <summary>The volume's size at <see cref="From"/> (its chain's, for a version of a chain it was branched from).</summary>
    public long FromSizeBytes { get; init; }
    /// <summary>The volume's size at <see cref="To"/>: what a copy of To is as long as.</summary>
    public long ToSizeBytes { get; init; }

    /// <summary>The sum of the ranges' lengths.</summary>
    public long Bytes { get; } = Ranges.Sum(r => r.Length);
}

/// <summary>One changed byte range.</summary>
public readonly record struct ChangedRange(long Offset, long Length)
{
    public long End => Offset + Length;
}
