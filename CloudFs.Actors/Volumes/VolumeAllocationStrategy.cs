// Shard allocation for volumes: a volume's shard goes only to a region on a member that holds the volume
// (the requester first when it does), and is never rebalanced elsewhere: data does not move with the shard.
using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

/// <param name="selfAddress">This member's address: a local region's path carries no host, so it stands for it.</param>
public sealed class VolumeAllocationStrategy(IVolumeLocator locator, Func<Address> selfAddress) : IShardAllocationStrategy
{
    public Task<IActorRef> AllocateShard(IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations)
        => Task.FromResult(Choose(requester, shardId, currentShardAllocations.Keys));

    /// <summary>The region for <paramref name="shardId"/>: on a holder, preferring the requester; the requester when no
    /// holder is known (its volume actor then answers "volume not found").</summary>
    public IActorRef Choose(IActorRef requester, string shardId, IEnumerable<IActorRef> regions)
    {
        if (!Id160.TryParse(shardId, out var volume)) return requester;
        var holders = locator.HoldersOf(volume);
        if (holders.Count == 0 || holders.Contains(AddressOf(requester))) return requester;
        foreach (var region in regions)
            if (holders.Contains(AddressOf(region))) return region;
        return requester;
    }

    // Never move a volume's shard on our own: the shard lives where its data is.
    public Task<IImmutableSet<string>> Rebalance(IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress)
        => Task.FromResult<IImmutableSet<string>>(ImmutableHashSet<string>.Empty);

    private Address AddressOf(IActorRef region) =>
        region.Path.Address.HasGlobalScope ? region.Path.Address : selfAddress();
}
