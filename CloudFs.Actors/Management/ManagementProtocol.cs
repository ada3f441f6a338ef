// Messages the CLI sends through ClusterClient to the management actor (registered with the
// receptionist at /user/cloudfs-management), and its answers. Serialized by the Hyperion adapter.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Management;

/// <summary>Marker for every message of the management protocol (the serializer accepts only these).</summary>
public interface IManagementMessage;

public sealed record HostAddress(string HostId, string Address) : IManagementMessage;

// Volumes
public sealed record CreateVolume(int Replicas, long SizeBytes, VolumeMode Mode) : IManagementMessage;
public sealed record VolumeCreated(string VolumeId, IReadOnlyList<HostAddress> Hosts) : IManagementMessage;
public sealed record BranchVolume(string Version) : IManagementMessage;
public sealed record ListVolumes : IManagementMessage;
public sealed record GetVolume(string VolumeId) : IManagementMessage;
/// <summary>One line of `cloudfs ls`: ids as 40 hex characters, Primary null when none; Health "healthy", or "degraded"
/// when a replica host is away or its log device failed; Parent the version a branch was made from.</summary>
public sealed record VolumeSummary(string Id, long Size, VolumeMode Mode, string? Primary, IReadOnlyList<string> Replicas, string Version,
    string Health = VolumeHealth.Healthy, string? Parent = null) : IManagementMessage;

/// <summary>The volumes; FailedHosts: the hosts whose log device failed (as placement knows them; null when not asked of placement).</summary>
public sealed record VolumeList(IReadOnlyList<VolumeSummary> Volumes, IReadOnlyList<HostFailure>? FailedHosts = null) : IManagementMessage;

/// <summary>A host whose log device failed: it is primary of nothing and takes no volume until restarted on a good device.</summary>
public sealed record HostFailure(string HostId, string Address, string Reason) : IManagementMessage;

/// <summary>The health values of `cloudfs ls` (SPEC.md) that CloudFS reports so far.</summary>
public static class VolumeHealth
{
    public const string Healthy = "healthy";
    /// <summary>A host of the replica set is away or its log device failed (the volume runs on the others).</summary>
    public const string Degraded = "degraded";
}

// Cluster inspection (Petabridge.Cmd's commands, offered by the host itself)
public sealed record ShowCluster : IManagementMessage;
public sealed record MemberLine(string Address, IReadOnlyList<string> Roles, string Status, string Reachability, string HostId) : IManagementMessage;
public sealed record ClusterMembers(IReadOnlyList<MemberLine> Members, string? Leader, string SelfAddress) : IManagementMessage;
public sealed record ClusterCommand(string Verb, string? Address) : IManagementMessage;   // leader|status|down-unreachable|join|leave|down
public sealed record ShardingCommand(string Verb) : IManagementMessage;                   // regions|stats

/// <summary>Plain-text answer of a command, printed as is by the CLI.</summary>
public sealed record CommandOutput(string Text) : IManagementMessage;

/// <summary>Any refusal: one clear sentence; the CLI prints it to stderr and exits non-zero.</summary>
public sealed record CommandFailed(string Reason) : IManagementMessage;
