// What the entries after a lost run hold of the lifecycle kinds (docs/FORMAT.md, "Restoring lost entries"): a lost
// Trash, Restore or Resize entry sets the volume's state only when no entry after the run has set that state since; a
// lost Protect entry protects or unprotects its version only when no protect entry after the run names that version.
using System.Collections.Immutable;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Volumes;

/// <summary>
/// The entries after a lost run up to lsn <paramref name="UpTo"/>, read from their headers: whether one of them sets the
/// trash state (a Trash or Restore entry) and whether one sets the size (a Resize entry).
/// </summary>
internal readonly record struct LaterLifecycle(long UpTo, bool SetsTrashState, bool SetsSize)
{
    /// <summary>The lsns of the versions protect entries seen protect or unprotect (null: none).</summary>
    public ImmutableHashSet<long>? Protections { get; init; }

    /// <summary>True when the entries seen set the state a lost entry of <paramref name="kind"/> sets (it is superseded);
    /// for a protect entry, the state of the version at <paramref name="protectedLsn"/>.</summary>
    public bool Supersedes(EntryKind kind, long protectedLsn = 0) => kind switch
    {
        EntryKind.Resize => SetsSize,
        EntryKind.Protect => Protections?.Contains(protectedLsn) == true,
        _ => SetsTrashState,
    };

    /// <summary>This, with the entry at <paramref name="lsn"/> (the next one) of <paramref name="kind"/> seen too (a
    /// protect entry naming the version at <paramref name="protectedLsn"/>).</summary>
    public LaterLifecycle With(long lsn, EntryKind kind, long protectedLsn = 0) => new(lsn,
        SetsTrashState || kind is EntryKind.Trash or EntryKind.Restore, SetsSize || kind == EntryKind.Resize)
    {
        Protections = kind == EntryKind.Protect ? (Protections ?? ImmutableHashSet<long>.Empty).Add(protectedLsn) : Protections,
    };

    /// <summary>True for the kinds whose state a restoration sets only after reading the later headers.</summary>
    public static bool IsLifecycle(EntryKind kind) => kind is EntryKind.Trash or EntryKind.Restore or EntryKind.Resize or EntryKind.Protect;
}
