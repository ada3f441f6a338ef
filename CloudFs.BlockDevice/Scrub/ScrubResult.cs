// What a scrub is asked to do and what it found.
namespace CloudFs.BlockDevice;

/// <param name="Volume">Only the blocks this volume reads (its own and its branch parents'); null: every live block of the log.</param>
/// <param name="BytesPerSecond">Device bytes read per second at most; 0 reads as fast as the device goes.</param>
public sealed record ScrubOptions(Id160? Volume = null, long BytesPerSecond = 0);

/// <summary>A range a scrub found bad: of a volume (now in its damage map), or of a resync's staged copy.</summary>
/// <param name="Staged">Only a full resync's staged copy holds it (no volume reads it yet, so no damage map has it).</param>
public readonly record struct ScrubFinding(Id160 Volume, long Offset, long Length, string Reason, bool Staged = false)
{
    public long End => Offset + Length;
    /// <summary>False when the damage map already had it (an earlier scrub or read found it).</summary>
    public bool IsNew { get; init; } = true;
}

/// <param name="BytesVerified">Live stored bytes whose checksums were checked.</param>
/// <param name="BytesRead">Bytes read from the device for that (with entry headers and short gaps).</param>
/// <param name="BadBlocks">Stored blocks that failed their checksum (or whose entry header failed).</param>
/// <param name="MovedBlocks">Live blocks not checked because compaction moved them meanwhile (it verified them as it copied).</param>
/// <param name="Findings">The bad ranges, one per volume and run of blocks, in log order.</param>
public sealed record ScrubResult(long BytesVerified, long BytesRead, long BadBlocks, long MovedBlocks, IReadOnlyList<ScrubFinding> Findings, TimeSpan Elapsed);
