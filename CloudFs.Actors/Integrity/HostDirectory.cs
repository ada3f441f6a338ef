// Where each host of the cluster can be reached: every member carries its host id as the role "host:<id>"
// (CloudFsConfig.WithHostRole), so gossip alone maps host ids to member addresses, with no question asked.
using Akka.Actor;
using Akka.Cluster;
using CloudFs.Actors.Node;

namespace CloudFs.Actors.Integrity;

public static class HostDirectory
{
    /// <summary>Host id (40 hex) → address of every member that is Up and reachable.</summary>
    public static IReadOnlyDictionary<string, Address> Live(Akka.Cluster.Cluster cluster)
    {
        var state = cluster.State;
        var hosts = new Dictionary<string, Address>(StringComparer.Ordinal);
        foreach (var m in state.Members)
        {
            if (m.Status != MemberStatus.Up || state.Unreachable.Contains(m)) continue;
            if (HostIdOf(m) is { } id) hosts[id] = m.Address;
        }
        return hosts;
    }

    /// <summary>The member's host id from its role, or null for a member that is no CloudFS host (a CLI client).</summary>
    public static string? HostIdOf(Member member) =>
        member.Roles.FirstOrDefault(r => r.StartsWith(CloudFsConfig.HostRolePrefix, StringComparison.Ordinal)) is { } role
            ? role[CloudFsConfig.HostRolePrefix.Length..]
            : null;
}
