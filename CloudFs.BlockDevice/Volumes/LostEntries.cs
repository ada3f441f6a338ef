// Entries of a volume that recovery had to skip (their header was beyond correction, docs/FORMAT.md "Recovery"): the
// chain jumped lsns FirstLsn..LastLsn, and what they wrote is damage until a replica's copy of them is restored
// (EntryRestoration.RestoreLostEntriesAsync) or the volume is written over.
namespace CloudFs.BlockDevice.Volumes;

/// <summary>
/// One run of lost lsns. <paramref name="VersionBefore"/> is the version at FirstLsn - 1 and
/// <paramref name="VersionLast"/> the version at LastLsn (the next entry's parent names it): a copy of the lost entries
/// must chain from the one to the other. <paramref name="Reason"/> is the volume's damage reason for them; the ranges
/// still damaged with it are exactly those no entry after the gap has written.
/// </summary>
internal sealed record LostEntries(long FirstLsn, long LastLsn, Id160 VersionBefore, Id160 VersionLast, string Reason)
{
    public bool Holds(long lsn) => lsn >= FirstLsn && lsn <= LastLsn;

    /// <summary>Set while one copy of the run is applied when a lifecycle entry of it could not be settled (a header
    /// after the run unreadable, so nothing tells whether a later entry superseded it): that copy does not clear the run.
    /// In memory only: the run stays lost, in the checkpoint too.</summary>
    public bool Unsettled { get; set; }
}
