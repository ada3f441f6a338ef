// What the entries after a lost run hold of the lifecycle kinds (docs/FORMAT.md, "Restoring lost entries"): a lost
// Trash, Restore or Resize entry sets the volume's state only when no entry after the run has set that state since.
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Volumes;

/// <summary>
/// The entries after a lost run up to lsn <paramref name="UpTo"/>, read from their headers: whether one of them sets the
/// trash state (a Trash or Restore entry) and whether one sets the size (a Resize entry).
/// </summary>
internal readonly record struct LaterLifecycle(long UpTo, bool SetsTrashState, bool SetsSize)
{
    /// <summary>True when the entries seen set the state a lost entry of <paramref name="kind"/> sets (it is superseded).</summary>
    public bool Supersedes(EntryKind kind) => kind == EntryKind.Resize ? SetsSize : SetsTrashState;

    /// <summary>This, with the entry at <paramref name="lsn"/> (the next one) of <paramref name="kind"/> seen too.</summary>
    public LaterLifecycle With(long lsn, EntryKind kind) => new(lsn,
        SetsTrashState || kind is EntryKind.Trash or EntryKind.Restore, SetsSize || kind == EntryKind.Resize);

    /// <summary>True for the kinds whose state names no lsn, so a restoration reads the later headers to set it.</summary>
    public static bool IsLifecycle(EntryKind kind) => kind is EntryKind.Trash or EntryKind.Restore or EntryKind.Resize;
}
