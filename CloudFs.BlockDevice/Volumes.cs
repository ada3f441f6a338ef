// Plain records the engine hands out about volumes, entries and space.
namespace CloudFs.BlockDevice;

public enum VolumeMode : byte { Async = 0, Sync = 1 }

/// <summary>What the engine knows about one volume held in this log.</summary>
/// <param name="BaseId">The volume id: public id of its creation entry.</param>
/// <param name="CurrentVersion">Public id of the newest entry (equal to BaseId when nothing was written).</param>
/// <param name="Lsn">Lsn of the newest entry (the creation entry has lsn 1).</param>
/// <param name="BranchedFrom">The frozen version this volume branched from, if it is a branch.</param>
/// <param name="Replicas">The replica set, the primary first, as of the newest view-change entry (or creation).</param>
/// <param name="IsWritable">True when this node holds the volume's secret and so can extend its chain.</param>
public sealed record VolumeInfo(
    Id160 BaseId,
    long SizeBytes,
    VolumeMode Mode,
    Id160 CurrentVersion,
    long Lsn,
    Id160? BranchedFrom,
    IReadOnlyList<Id160> Replicas,
    bool IsWritable)
{
    /// <summary>How many view changes the volume's chain holds (0 until the first failover).</summary>
    public long ViewNumber { get; init; }

    /// <summary>Public version of the entry that began the current view: the base id, or the newest view-change entry's.</summary>
    public Id160 View { get; init; }
}

/// <summary>The head after an append: the new entry's lsn and public version id.</summary>
public readonly record struct AppendResult(long Lsn, Id160 Version);

/// <summary>A range of a volume and whether it holds stored data (false: a hole that reads as zeros).</summary>
public readonly record struct MappedRange(long Offset, long Length, bool Allocated);

/// <summary>Space accounting of the log.</summary>
public sealed record LogUsage(long CapacityBytes, long UsedBytes, int SegmentSize, int TotalSegments, int FreeSegments, long LiveBytes);

public enum EntryKind : ushort
{
    Create = 1,
    Data = 2,
    Zero = 3,
    Branch = 4,
    ViewChange = 5,
    /// <summary>Compaction's copy of live blocks; not part of any chain (never streamed).</summary>
    Relocation = 6,
    /// <summary>A fork split: the volume's head goes back to an earlier lsn (local only, never streamed).</summary>
    Rewind = 7,
}

/// <summary>An entry's header as recovery and journal replay see it: no volume data is read to produce it.</summary>
public sealed record EntryHeaderInfo(
    Id160 Volume,
    long Lsn,
    EntryKind Kind,
    Id160 Version,
    long Offset,
    long Length,
    long TimestampUnixMs);

/// <summary>Result of applying a stream: how many entries were applied and, if it stopped early, why.</summary>
public sealed record ApplyResult(long Applied, Id160? Volume, Id160? Head, string? Error, bool IsFork = false)
{
    public bool Ok => Error is null;
}

public sealed record CompactionResult(int SegmentsCompacted, long BytesCopied, int SegmentsFreed);
