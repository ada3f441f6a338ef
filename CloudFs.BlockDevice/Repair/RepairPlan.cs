// The records of a repair from a replica: what fails here (with this host's own checksums), what a replica sends back,
// and what the repair did with it. The protocol is in LogStore.Repair.cs and docs/FORMAT.md ("Repair").
namespace CloudFs.BlockDevice;

/// <summary>A stored block that fails its checksum here and that a replica's copy may replace.</summary>
/// <param name="Block">The logical block.</param>
/// <param name="LogBlock">Where it is stored here (the place the repair moves the indexes away from).</param>
/// <param name="EntryBlock">The header holding its CRC.</param>
/// <param name="Crc">This host's own CRC32C of the block: a replica's bytes are accepted only if they match it.</param>
/// <param name="SourceLsn">The lsn of the write the block comes from here (a Relocation keeps it; a resync's pieces carry the lsn they were taken at, which is no earlier).</param>
/// <param name="Own">Empty for a block checked by its entry's header. For a block whose entry header is bad and that no lsn of
/// the volume names (a relocated, resynced or restored copy, a branch's view of its source's entry): this host's own bytes
/// of it, unverified (<paramref name="Crc"/> and <paramref name="SourceLsn"/> are then 0: they were in the bad header). A
/// replica's verified copy can only confirm them byte for byte, or a majority of the replica set agree on the block
/// (LogStore.ApplyAgreedRepairAsync).</param>
public readonly record struct RepairBlock(long Block, long LogBlock, long EntryBlock, uint Crc, long SourceLsn, ReadOnlyMemory<byte> Own = default)
{
    /// <summary>The block's entry header is bad and no lsn names it: nothing here checks it (see <see cref="Own"/>).</summary>
    public bool Unchecked => !Own.IsEmpty;
}

/// <summary>
/// An entry whose header fails here (beyond one flipped bit) although a checkpoint covered it, so recovery never met it:
/// its blocks have nothing to be checked against here, but the lsn table names its lsn, so a replica's whole entry of that
/// lsn can restore them (EntryRestoration.RestoreBadEntryAsync). <paramref name="Range"/> is the first damaged range it was met in.
/// </summary>
public readonly record struct BadEntry(long EntryBlock, long Lsn, DamagedRange Range);

/// <summary>
/// What a repair of one range of a volume needs from a replica: the blocks that fail here, and this host's head (the
/// replica must be on the same chain). <see cref="BadEntries"/> lists the entries whose header fails here (a replica's whole
/// entry can restore their blocks); <see cref="Unrepairable"/> what cannot be restored at all (a stored block outside its
/// entry). <see cref="Blocks"/> includes the blocks of bad headers no lsn names (<see cref="RepairBlock.Unchecked"/>).
/// </summary>
public sealed record RepairPlan(Id160 Volume, long HeadLsn, Id160 HeadVersion, IReadOnlyList<RepairBlock> Blocks, IReadOnlyList<DamagedRange> Unrepairable,
    IReadOnlyList<BadEntry> BadEntries)
{
    /// <summary>The byte range to fetch: from the first bad block to the end of the last (length 0 when there is none).</summary>
    public long FetchOffset => Blocks.Count == 0 ? 0 : Blocks[0].Block * LogStore.BlockSize;
    public int FetchLength => Blocks.Count == 0 ? 0 : (int)((Blocks[^1].Block + 1 - Blocks[0].Block) * LogStore.BlockSize);
}

/// <summary>
/// A replica's copy of a range for a repair, read and verified there, with what the asker needs to tell whether it is
/// the same version of those blocks: the replica's head, whether its chain holds the asker's head, and the newest lsn
/// any block of the range was written at there.
/// </summary>
public sealed record ReplicaBlocks(long HeadLsn, Id160 HeadVersion, bool HoldsAskerHead, long NewestSourceLsn, ReadOnlyMemory<byte> Data);

/// <summary>What a repair did: blocks restored, blocks whose replica copy was refused (and the first reason).</summary>
public sealed record RepairOutcome(long Repaired, long Refused, string? Refusal);
