// The volume shards: one per host, "h-" and the host id. A host's shard holds the actors of the volumes whose primary
// the host is (as the sender believed), so the shard coordinator's state names one home per host, not per volume
// (docs/CLUSTER.md, "Shards").
using System.Collections.Concurrent;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

public static class HostShard
{
    private const string Prefix = "h-";

    // Every message routed names its shard: the few hosts' ids are formatted once.
    private static readonly ConcurrentDictionary<Id160, string> Ids = new();

    /// <summary>The shard id of <paramref name="host"/>'s volumes.</summary>
    public static string Of(Id160 host) => Ids.GetOrAdd(host, static h => Prefix + h);

    /// <summary>The host whose shard <paramref name="shardId"/> is; null for anything else.</summary>
    public static Id160? HostOf(string shardId) =>
        shardId.StartsWith(Prefix, StringComparison.Ordinal) && Id160.TryParse(shardId[Prefix.Length..], out var host) ? host : null;
}
