// Lost entries from the outside: which runs of lsns recovery skipped on this host, and what restoring one from a
// replica's copy did (Repair/EntryRestoration.cs, docs/FORMAT.md "Scrub and repair").
namespace CloudFs.BlockDevice;

/// <summary>Lsns <paramref name="FirstLsn"/>..<paramref name="LastLsn"/> of a volume were lost to corruption here; the
/// volume's damage map names them with <paramref name="Reason"/>.</summary>
public sealed record LostEntryRun(long FirstLsn, long LastLsn, string Reason);

/// <summary>What restoring lost entries did: entries appended again and the blocks they store, or the entries of a
/// replica's copy refused (nothing written) and why.</summary>
public sealed record RestoreOutcome(long Entries, long Blocks, long RefusedEntries, string? Refusal);
