// What the HTTP API asks of the cluster: members and volumes for /cluster, where a volume's primary serves HTTP, and
// whether this node can serve (/health) and should be sent work (/ready).
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Http;

internal interface IClusterView
{
    Task<ClusterMembers> MembersAsync(CancellationToken ct);
    Task<VolumeList> VolumesAsync(CancellationToken ct);
    /// <summary>"IP:PORT" of the HTTP API of the volume's primary, or null when no primary is known.</summary>
    Task<string?> PrimaryHttpAsync(Id160 volume, CancellationToken ct);
    /// <summary>Why this node cannot serve at all (its log device failed); null while it can.</summary>
    string? Unhealthy { get; }
    /// <summary>Why this node should not be sent work (unhealthy, not an Up member, stopping); null once it has joined and recovered.</summary>
    string? NotReady { get; }
    /// <summary>`cloudfs rm`: the volume (an id or a name) to the trash; answered with its VolumeSummary or a CommandFailed.</summary>
    Task<IManagementMessage> RemoveVolumeAsync(string volume, bool force, CancellationToken ct);
}

/// <summary>The production view: asks the node's management actor; health from its engine and its cluster member
/// (all of the node's current incarnation: a node that rejoined the cluster has a new one).</summary>
internal sealed class ManagementClusterView(CloudFsNode node, int httpPort) : IClusterView
{
    public string? Unhealthy => node.Store.DeviceFailure is { } failed ? $"the log device failed: {failed.Message}" : null;

    public string? NotReady
    {
        get
        {
            if (Unhealthy is { } reason) return reason;
            var cluster = Akka.Cluster.Cluster.Get(node.System);
            if (cluster.IsTerminated) return "this node is not a member of the cluster now (it left, or it rejoins after it was downed)";
            var status = cluster.SelfMember.Status;
            return status == Akka.Cluster.MemberStatus.Up ? null : $"this node is {status.ToString().ToLowerInvariant()} in the cluster, not up";
        }
    }

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public Task<IManagementMessage> RemoveVolumeAsync(string volume, bool force, CancellationToken ct) =>
        // It asks every member about attachments, then the volume's primary to append the entry.
        node.Management.Ask<IManagementMessage>(new RemoveVolume(volume, force), node.Settings.Management.AskTimeout * 10, ct);

    public Task<ClusterMembers> MembersAsync(CancellationToken ct) => Ask<ClusterMembers>(new ShowCluster(), ct);
    public Task<VolumeList> VolumesAsync(CancellationToken ct) => Ask<VolumeList>(new ListVolumes(), ct);

    public async Task<string?> PrimaryHttpAsync(Id160 volume, CancellationToken ct)
    {
        var summary = await Ask<VolumeSummary>(new GetVolume(volume.ToString()), ct);
        if (string.IsNullOrEmpty(summary.Primary)) return null;
        var members = await MembersAsync(ct);
        var member = members.Members.FirstOrDefault(m => m.HostId == summary.Primary);
        // Every node of a cluster uses the same ports on its own address (SPEC.md), so the primary's
        // HTTP API is its akka host with this node's HTTP port.
        return member is null ? null : HostOf(member.Address) is { } host ? $"{host}:{httpPort}" : null;
    }

    internal static string? HostOf(string akkaAddress)
    {
        try { return Address.Parse(akkaAddress).Host; }
        catch (UriFormatException) { return null; }
    }

    private async Task<T> Ask<T>(IManagementMessage request, CancellationToken ct) where T : IManagementMessage
    {
        var answer = await node.Management.Ask<IManagementMessage>(request, Timeout, ct);
        return answer switch
        {
            T t => t,
            CommandFailed f => throw new CloudFsException(f.Reason),
            _ => throw new CloudFsException($"the management actor answered {answer.GetType().Name} to {request.GetType().Name}"),
        };
    }
}
