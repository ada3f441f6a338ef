// Messages the CLI sends through ClusterClient to the management actor (registered with the
// receptionist at /user/cloudfs-management), and its answers. Serialized by the Hyperion adapter.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Management;

/// <summary>Marker for every message of the management protocol (the serializer accepts only these).</summary>
public interface IManagementMessage;

public sealed record HostAddress(string HostId, string Address) : IManagementMessage;

// Volumes
/// <param name="Name">The volume's name, unique in the cluster (null for none).</param>
public sealed record CreateVolume(int Replicas, long SizeBytes, VolumeMode Mode, string? Name = null) : IManagementMessage;
public sealed record VolumeCreated(string VolumeId, IReadOnlyList<HostAddress> Hosts) : IManagementMessage;
/// <summary>`cloudfs branch VERSION`: made by a node that holds the version (this one, else one that answers
/// <see cref="CanBranch"/>); <paramref name="HereOnly"/>: asked by another node, not passed on again.</summary>
public sealed record BranchVolume(string Version, bool HereOnly = false) : IManagementMessage;
/// <summary>Node to node: can this node branch the version (it holds it, its head or within its history)? Answered with
/// <see cref="BranchAnswer"/>.</summary>
public sealed record CanBranch(string Version) : IManagementMessage;
public sealed record BranchAnswer(bool Can) : IManagementMessage;
public sealed record ListVolumes : IManagementMessage;
/// <summary>`cloudfs diff VOLUME FROM [TO]`: the byte ranges of the volume (an id or a name) changed between version
/// FROM (of its own chain or a chain it was branched from) and TO (null: its current version); answered with
/// <see cref="VersionDiff"/> by a node holding the volume.</summary>
public sealed record DiffVersions(string Volume, string From, string? To) : IManagementMessage;
/// <summary>SPEC.md's `diff --json` object: the ranges merged, in offset order, and their total.</summary>
/// <param name="FromSize">The volume's size at From, and <paramref name="ToSize"/> at To: each version keeps its own size.</param>
public sealed record VersionDiff(string From, string To, IReadOnlyList<DiffRange> Ranges, long Bytes, long FromSize, long ToSize) : IManagementMessage;
public sealed record DiffRange(long Offset, long Length);
public sealed record GetVolume(string VolumeId) : IManagementMessage;
/// <summary>One line of `cloudfs ls`: ids as 40 hex characters, Primary null when none; Name null when it has none;
/// Health one of VolumeHealth's words; Parent the version a branch was made from (null unless a branch);
/// TrashedAtUnixMs when it went to the trash (0: not in it; `ls` lists only those, `trash ls` the others); Lag each
/// replica's state and lag (empty when only one host's word is known), CurrentReplicas how many of them are current
/// (the primary counts), ResyncPercent the least progress of a resync under way (null unless resyncing).</summary>
public sealed record VolumeSummary(string Id, long Size, VolumeMode Mode, string? Primary, IReadOnlyList<string> Replicas, string Version,
    string? Name = null, string Health = VolumeHealth.Healthy, string? Parent = null, long TrashedAtUnixMs = 0,
    IReadOnlyList<ReplicaLag>? Lag = null, int CurrentReplicas = 0, int? ResyncPercent = null) : IManagementMessage
{
    public bool IsTrashed => TrashedAtUnixMs != 0;

    /// <summary>The versions `cloudfs protect` keeps past the retention time.</summary>
    public IReadOnlyList<string> Protected { get; init; } = [];
}

/// <summary>The volumes; FailedHosts: the hosts whose log device failed (as placement knows them; null when not asked of placement).</summary>
public sealed record VolumeList(IReadOnlyList<VolumeSummary> Volumes, IReadOnlyList<HostFailure>? FailedHosts = null) : IManagementMessage;

/// <summary>One page of the cluster's volumes in id order: those after <paramref name="After"/> (null: from the first;
/// that page is answered after a fresh placement round), at most <paramref name="Limit"/>; with
/// <paramref name="UnhealthyOnly"/> only volumes that are not healthy; the volumes not in the trash (`ls`), or with
/// <paramref name="InTrash"/> only those in it (`trash ls`). Answered with <see cref="VolumePage"/>, so no message
/// carries more than one page however many volumes there are.</summary>
public sealed record ListVolumePage(string? After, int Limit, bool UnhealthyOnly = false, bool InTrash = false) : IManagementMessage
{
    /// <summary>The most volumes one page carries (far below the remoting frame size: ~190 bytes each).</summary>
    public const int MaxLimit = 1000;
}

/// <summary>A page of volumes; <paramref name="Next"/>: the cursor of the following page (null after the last).</summary>
public sealed record VolumePage(IReadOnlyList<VolumeSummary> Volumes, string? Next, IReadOnlyList<HostFailure> FailedHosts) : IManagementMessage;

/// <summary>Where one volume lives (replica set and primary), answered by placement from its table in O(1);
/// <paramref name="VolumeId"/> is its id or its name (in the trash too). Answered with <see cref="VolumeLocation"/>.</summary>
public sealed record LocateVolume(string VolumeId) : IManagementMessage;

/// <summary><paramref name="Volume"/> null: no host reported it. <paramref name="PrimaryAddress"/>: the akka address of
/// the primary's member while it is live, else null.</summary>
public sealed record VolumeLocation(VolumeSummary? Volume, string? PrimaryAddress) : IManagementMessage;

/// <summary>A host whose log device failed: it is primary of nothing and takes no volume until restarted on a good device.</summary>
public sealed record HostFailure(string HostId, string Address, string Reason) : IManagementMessage;

// Lifecycle: `cloudfs rm`, `trash ls | restore | purge`, `resize` (VOLUME: an id or a name). Each change is answered
// with the volume's VolumeSummary after it, or a CommandFailed.
/// <param name="Force">Remove it even while a client has it attached read-write over NBD.</param>
public sealed record RemoveVolume(string Volume, bool Force) : IManagementMessage;
public sealed record RestoreVolume(string Volume) : IManagementMessage;
/// <param name="AllowShrink">A smaller size is allowed (what lies beyond it is dropped).</param>
public sealed record ResizeVolume(string Volume, long SizeBytes, bool AllowShrink) : IManagementMessage;
/// <summary>`cloudfs protect VERSION` (<paramref name="Protect"/>) or `unprotect VERSION`: answered with the volume's
/// VolumeSummary after it (its protected versions as soon as placement hears of them), or a CommandFailed. Answered by
/// a node that holds the version (this one, else one that answers <see cref="CanBranch"/>, as for
/// <see cref="BranchVolume"/>); <paramref name="HereOnly"/>: asked by another node, not passed on again.</summary>
public sealed record ProtectVersion(string Version, bool Protect, bool HereOnly = false) : IManagementMessage;
/// <summary>Answered with a VolumeList of the volumes in the trash.</summary>
public sealed record ListTrash : IManagementMessage;
/// <summary>Purges one volume in the trash, or every one (Volume null); answered with a VolumeList of those purged.</summary>
public sealed record PurgeTrash(string? Volume) : IManagementMessage;
/// <summary>Node to node: how many read-write NBD attachments of the volume this node serves; answered with <see cref="AttachmentCount"/>.</summary>
public sealed record CountAttachments(string Volume) : IManagementMessage;
public sealed record AttachmentCount(string Volume, int ReadWrite) : IManagementMessage;

// Integrity: `cloudfs scrub [VOLUME]` and `cloudfs verify VOLUME [--deep]`
public sealed record ScrubVolumes(string? Volume) : IManagementMessage;
/// <summary>What one host's scrub read; Error when it could not scrub (unreachable, does not hold the volume).</summary>
public sealed record ScrubHostLine(string HostId, long BytesVerified, long BadBlocks, double Seconds, string? Error) : IManagementMessage;
/// <summary>A bad range on one host: Status "repaired" (restored from another replica) or "damaged" (still cannot be served there).</summary>
public sealed record ScrubRangeLine(string Volume, string HostId, long Offset, long Length, string Status, string Reason) : IManagementMessage;
/// <param name="RangesLeftOut">Bad ranges the hosts found but did not list (each lists at most 10,000).</param>
public sealed record ScrubReport(ScrubHostLine[] Hosts, ScrubRangeLine[] Ranges, long RangesLeftOut = 0) : IManagementMessage
{
    /// <summary>Every host scrubbed and nothing is left damaged.</summary>
    public bool Clean => Hosts.All(h => h.Error is null) && Ranges.All(r => r.Status != "damaged") && RangesLeftOut == 0;
}

public sealed record VerifyVolume(string Volume, bool Deep) : IManagementMessage;
/// <summary>One replica's head and how it compares with the primary's: "equal", "behind by N entries", "ahead by N
/// entries", "diverged", "missing" or "unreachable" (", N bytes damaged" appended when it reports damage).</summary>
public sealed record VerifyReplicaLine(string HostId, long Lsn, string Version, string Status, bool Equal) : IManagementMessage;
/// <summary>A range whose content is not the same on every replica: the hosts whose copy differs from the others'.</summary>
public sealed record VerifyRangeLine(long Offset, long Length, string[] Hosts, string Why) : IManagementMessage;
/// <param name="Lsn">With Deep: the version the digests were compared at (0 when no common version was found).</param>
/// <param name="Note">Why the deep comparison could not be made, if it could not.</param>
public sealed record VerifyReport(string Volume, VerifyReplicaLine[] Replicas, bool Deep, long Lsn, string? Version, long RangeBytes, long Ranges,
    VerifyRangeLine[] Differences, string? Note) : IManagementMessage
{
    /// <summary>Every replica at the same version and, with Deep, every range alike on all of them.</summary>
    public bool Equal => Replicas.All(r => r.Equal) && Differences.Length == 0 && Note is null;
}

// Cluster inspection (Petabridge.Cmd's commands, offered by the host itself)
public sealed record ShowCluster : IManagementMessage;
public sealed record MemberLine(string Address, IReadOnlyList<string> Roles, string Status, string Reachability, string HostId) : IManagementMessage;
public sealed record ClusterMembers(IReadOnlyList<MemberLine> Members, string? Leader, string SelfAddress) : IManagementMessage;
public sealed record ClusterCommand(string Verb, string? Address) : IManagementMessage;   // leader|status|down-unreachable|join|leave|down
public sealed record ShardingCommand(string Verb) : IManagementMessage;                   // regions|stats

/// <summary>Plain-text answer of a command, printed as is by the CLI; <paramref name="Json"/>: the same data as a JSON
/// document, for `--json`, where the command reports data (cluster leader and status, sharding regions and stats).</summary>
public sealed record CommandOutput(string Text, string? Json = null) : IManagementMessage;

/// <summary>Any refusal: one clear sentence; the CLI prints it to stderr and exits non-zero.</summary>
public sealed record CommandFailed(string Reason) : IManagementMessage;
