// Shard allocation for volumes: shard "h-X" (HostShard) goes to the region on host X's member, found by the host's
// proof of identity (no ask of anyone: a table of hosts, O(hosts)). A host with no region yet (it is away, or not yet
// proven to the coordinator's member) has its shard placed on the requester, where every volume actor answers "not
// the primary" (VolumeActor: an actor writes only in its own host's shard), and the next rebalance round moves the
// shard to its host once that host's region is there. Only such shards ever move: a failover moves a volume's primary,
// which the senders follow (VolumeRoutes), not a shard.
using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

/// <param name="addressOfHost">Where a host is (the member that proved to be it); null when unknown.</param>
/// <param name="selfAddress">This member's address: a local region's path carries no host, so it stands for it.</param>
/// <param name="reachable">Whether a member is Up and reachable: a shard on an unreachable member is never handed off
/// (the hand-off would wait for that member's answer); it is reallocated once the member is removed.</param>
public sealed class VolumeAllocationStrategy(Func<Id160, Address?> addressOfHost, Func<Address> selfAddress, Func<Address, bool>? reachable = null)
    : IShardAllocationStrategy
{
    public Task<IActorRef> AllocateShard(IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations) =>
        Task.FromResult(HomeOf(shardId, currentShardAllocations.Keys) ?? requester);

    /// <summary>The region on the member of the host whose shard <paramref name="shardId"/> is; null when it has none.</summary>
    public IActorRef? HomeOf(string shardId, IEnumerable<IActorRef> regions)
    {
        if (HostShard.HostOf(shardId) is not { } host || addressOfHost(host) is not { } address) return null;
        foreach (var region in regions)
            if (AddressOf(region) == address) return region;
        return null;
    }

    public Task<IImmutableSet<string>> Rebalance(IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress) =>
        Task.FromResult(Misplaced(currentShardAllocations, rebalanceInProgress));

    /// <summary>The shards away from their host's region while that region is there (never from an unreachable member).</summary>
    public IImmutableSet<string> Misplaced(IImmutableDictionary<IActorRef, IImmutableList<string>> allocations, IImmutableSet<string> inProgress)
    {
        var move = ImmutableHashSet.CreateBuilder<string>();
        foreach (var (region, shards) in allocations)
        {
            if (reachable is not null && !reachable(AddressOf(region))) continue;
            foreach (var shard in shards)
                if (!inProgress.Contains(shard) && HomeOf(shard, allocations.Keys) is { } home && !home.Equals(region) && (reachable is null || reachable(AddressOf(home))))
                    move.Add(shard);
        }
        return move.ToImmutable();
    }

    private Address AddressOf(IActorRef region) =>
        region.Path.Address.HasGlobalScope ? region.Path.Address : selfAddress();
}
