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

    /// <summary>The ranges this host cannot serve (failed checksums, entries lost to corruption); empty when whole.</summary>
    public IReadOnlyList<DamagedRange> Damage { get; init; } = [];

    public bool IsDamaged => Damage.Count > 0;

    /// <summary>The volume's name (unique in the cluster, given at creation), or null.</summary>
    public string? Name { get; init; }

    /// <summary>When the volume was moved to the trash (the trash entry's timestamp), or null while it is not in the trash.</summary>
    public DateTimeOffset? TrashedAt { get; init; }

    public bool IsTrashed => TrashedAt is not null;

    /// <summary>The versions of the volume's chain that `cloudfs protect` keeps past the retention time, oldest first.</summary>
    public IReadOnlyList<Id160> Protected { get; init; } = [];
}

/// <summary>A byte range of a volume that this host cannot serve, and why (which log position, which lsns).</summary>
public readonly record struct DamagedRange(long Offset, long Length, string Reason)
{
    public long End => Offset + Length;
}

/// <summary>The head after an append: the new entry's lsn and public version id.</summary>
public readonly record struct AppendResult(long Lsn, Id160 Version);

/// <summary>A range of a volume and whether it holds stored data (false: a hole that reads as zeros).</summary>
public readonly record struct MappedRange(long Offset, long Length, bool Allocated);

/// <summary>Space accounting of the log, and the memory its volumes' indexes hold.</summary>
/// <param name="IndexBytes">Approximate memory of every volume's extent index and lsn table (pages a branch shares with
/// its source counted in both).</param>
public sealed record LogUsage(long CapacityBytes, long UsedBytes, int SegmentSize, int TotalSegments, int FreeSegments, long LiveBytes, long IndexBytes = 0);

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
    /// <summary>A full resync's piece: live blocks of a volume as of one lsn, outside every chain (staged until its commit).</summary>
    ResyncData = 8,
    /// <summary>A full resync's commit: installs the staged blocks as the volume at that lsn, atomically (never streamed).</summary>
    ResyncCommit = 9,
    /// <summary>`cloudfs rm`: the volume goes to the trash (a chain entry, no payload; its timestamp is when).</summary>
    Trash = 10,
    /// <summary>`cloudfs trash restore`: the volume leaves the trash (a chain entry, no payload).</summary>
    Restore = 11,
    /// <summary>`cloudfs resize`: the volume's new size (a chain entry; payload: new size, size before).</summary>
    Resize = 12,
    /// <summary>`cloudfs trash purge` or the trash's expiry on this host: the volume is dropped here (local, never streamed).</summary>
    Purge = 13,
    /// <summary>`cloudfs protect` / `unprotect`: a version of the chain is kept past the retention time, or no longer
    /// (a chain entry; payload: the version, its lsn, protect or not).</summary>
    Protect = 14,
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
/// <param name="IsRefused">The stream was refused before its entries were looked at: it creates a volume and the caller
/// did not ask for an import.</param>
public sealed record ApplyResult(long Applied, Id160? Volume, Id160? Head, string? Error, bool IsFork = false, bool IsRefused = false)
{
    public bool Ok => Error is null;
    /// <summary>The refused entry would have extended a chain this host's writer owns (<see cref="ChainClaimedException"/>).</summary>
    public bool IsClaimed { get; init; }
}

public sealed record CompactionResult(int SegmentsCompacted, long BytesCopied, int SegmentsFreed);

/// <summary>
/// Compaction and the appends that waited for it, since the store opened: passes run, segments compacted and freed,
/// live bytes copied forward; entries that waited for a free segment, entries that failed for want of one after
/// waiting (LogFullException), entries waiting now; and the free segments only compaction may take.
/// </summary>
public sealed record CompactionStats(long Passes, long SegmentsCompacted, long BytesCopied, long SegmentsFreed,
    long AppendsWaited, long AppendsRefused, int AppendsWaiting, int ReserveSegments)
{
    /// <summary>Timer passes skipped over an idle log (nothing placed, nothing due since the last pass).</summary>
    public long PassesSkipped { get; init; }
}

/// <summary>
/// One piece of a full resync as the sender reads it: whole ResyncData entries (and, in the last piece, the ResyncCommit
/// entry), byte for byte as the receiver writes them, for <see cref="Resync.FullResync.ApplyAsync(ReadOnlyMemory{byte}, CancellationToken)"/>.
/// </summary>
/// <param name="Transfer">The transfer this piece belongs to: name it to ask for the next piece.</param>
/// <param name="Lsn">The lsn the volume is transferred as of; ordinary entries after it follow.</param>
/// <param name="Version">The volume's version at <paramref name="Lsn"/>.</param>
/// <param name="NextBlock">Where the next piece starts (logical block); ask with it.</param>
/// <param name="Complete">True for the last piece (it ends with the commit entry).</param>
public sealed record ResyncChunk(Id160 Transfer, long Lsn, Id160 Version, byte[] Data, long NextBlock, bool Complete);

/// <summary>What applying a resync piece did; <paramref name="Committed"/> once the volume is installed, durable, at <paramref name="Lsn"/>.</summary>
public sealed record ResyncProgress(Id160 Volume, Id160 Transfer, long Pieces, long Bytes, bool Committed, long Lsn, Id160 Version);
