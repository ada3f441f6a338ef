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

public sealed class ExtentIndex
{
    /// <summary>Maps [start, start+count) to log blocks, replacing whatever overlapped (older extents are split or trimmed).</summary>
    public void Insert(long start, int count, long logBlock, long entryBlock) => throw new NotImplementedException();

    /// <summary>Makes [start, start+count) a hole (unwritten; a branch falls through to its parent there).</summary>
    public void Remove(long start, long count) => throw new NotImplementedException();

    /// <summary>
    /// Appends to <paramref name="output"/>, in order, the extents covering [start, start+count), clipped to it.
    /// Gaps are holes. For a branch, gaps are resolved through the frozen parent.
    /// </summary>
    public void Lookup(long start, long count, List<Extent> output) => throw new NotImplementedException();

    /// <summary>Number of extents held (not counting a parent's).</summary>
    public long Count => throw new NotImplementedException();

    /// <summary>Approximate bytes of memory held (not counting a parent's).</summary>
    public long MemoryBytes => throw new NotImplementedException();

    /// <summary>A frozen copy that later changes to this index do not affect (copy-on-write; cheap).</summary>
    public ExtentIndex Snapshot() => throw new NotImplementedException();

    /// <summary>A new empty index whose holes read through to a frozen snapshot of this one (a branch).</summary>
    public ExtentIndex Branch() => throw new NotImplementedException();

    /// <summary>The frozen parent of a branch, or null.</summary>
    public ExtentIndex? Parent => throw new NotImplementedException();

    /// <summary>Every extent of this index (not the parent's) in logical order.</summary>
    public IEnumerable<Extent> Enumerate() => throw new NotImplementedException();

    /// <summary>
    /// Compaction: the parts of [start, start+count) that still map to the log blocks starting at
    /// <paramref name="oldLogBlock"/> now map to <paramref name="newLogBlock"/> (same offsets), entry <paramref name="newEntryBlock"/>.
    /// Parts overwritten since are left alone. Works on frozen snapshots too (bytes do not change, only where they live).
    /// Returns the number of blocks moved.
    /// </summary>
    public long Relocate(long start, int count, long oldLogBlock, long newLogBlock, long newEntryBlock) => throw new NotImplementedException();

    /// <summary>Compact binary form for checkpoints (little-endian, documented in docs/FORMAT.md).</summary>
    public void WriteTo(System.Buffers.IBufferWriter<byte> output) => throw new NotImplementedException();

    public static ExtentIndex ReadFrom(ReadOnlySpan<byte> input, out int consumed) => throw new NotImplementedException();
}
