// What the HTTP API asks of the cluster: the management messages (/cluster, ManagementRoutes), where a volume's primary serves HTTP, and
// whether this node can serve (/health) and should be sent work (/ready).
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Http;

internal interface IClusterView
{
    /// <summary>One management message to this node's management actor; its answer (a CommandFailed for a refusal).</summary>
    Task<IManagementMessage> AskAsync(IManagementMessage request, TimeSpan timeout, CancellationToken ct);
    /// <summary>"IP:PORT" of the HTTP API of the volume's primary, or null when no primary is known.</summary>
    Task<string?> PrimaryHttpAsync(Id160 volume, CancellationToken ct);
    /// <summary>Why this node cannot serve at all (its log device failed); null while it can.</summary>
    string? Unhealthy { get; }
    /// <summary>Why this node should not be sent work (unhealthy, not an Up member, stopping); null once it has joined and recovered.</summary>
    string? NotReady { get; }
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

    public Task<IManagementMessage> AskAsync(IManagementMessage request, TimeSpan timeout, CancellationToken ct) =>
        node.AskManagementAsync<IManagementMessage>(request, timeout, ct);

    public async Task<string?> PrimaryHttpAsync(Id160 volume, CancellationToken ct)
    {
        // One lookup in placement's table (not a listing of every volume).
        var location = await AskAsync(new LocateVolume(volume.ToString()), Timeout, ct) as VolumeLocation;
        // Every node of a cluster uses the same ports on its own address (SPEC.md), so the primary's
        // HTTP API is its akka host with this node's HTTP port.
        return location?.PrimaryAddress is { } primary && HostOf(primary) is { } host ? $"{host}:{httpPort}" : null;
    }

    internal static string? HostOf(string akkaAddress)
    {
        try { return Address.Parse(akkaAddress).Host; }
        catch (UriFormatException) { return null; }
    }
}
