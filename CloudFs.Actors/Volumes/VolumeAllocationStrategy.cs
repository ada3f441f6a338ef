// Shard allocation for volumes: a volume's shard goes to the region on its primary's member, as the placement
// singleton knows it; without an answer, to a member whose log holds the volume (the requester first when it does).
// Rebalancing moves only shards that sit anywhere but on their primary (after a failover or a primary's return).
using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

/// <param name="placement">The placement singleton (its proxy); null for the local-only rule.</param>
/// <param name="selfAddress">This member's address: a local region's path carries no host, so it stands for it.</param>
/// <param name="reachable">Whether a member is Up and reachable: a shard on an unreachable member is never handed off
/// (the hand-off would wait for that member's answer); it is reallocated once the member is removed.</param>
public sealed class VolumeAllocationStrategy(IVolumeLocator locator, Func<Address> selfAddress, IActorRef? placement = null,
    Func<Address, bool>? reachable = null, TimeSpan? primaryWait = null)
    : IShardAllocationStrategy
{
    private readonly TimeSpan _primaryWait = primaryWait ?? TimeSpan.FromSeconds(15);
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(2);

    public async Task<IActorRef> AllocateShard(IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations)
    {
        if (placement is not null && Id160.TryParse(shardId, out _))
        {
            // During a failover the primary is briefly unknown: wait for it rather than pin the shard elsewhere.
            var deadline = DateTime.UtcNow + _primaryWait;
            while (true)
            {
                PrimaryIs? answer = null;
                try { answer = await placement.Ask<PrimaryIs>(new WhereIsPrimary(shardId), AskTimeout).ConfigureAwait(false); }
                catch (Exception e) when (e is AskTimeoutException or TaskCanceledException) { }
                if (answer is { Known: false }) break;
                if (answer?.Address is { } address)
                {
                    var primary = Address.Parse(address);
                    foreach (var region in currentShardAllocations.Keys)
                        if (AddressOf(region) == primary) return region;
                }
                if (DateTime.UtcNow >= deadline) break;
                await Task.Delay(200).ConfigureAwait(false);
            }
        }
        return Choose(requester, shardId, currentShardAllocations.Keys);
    }

    /// <summary>The region for <paramref name="shardId"/> by the local rule: on a holder, preferring the requester; the
    /// requester when no holder is known (its volume actor then answers "volume not found").</summary>
    public IActorRef Choose(IActorRef requester, string shardId, IEnumerable<IActorRef> regions)
    {
        if (!Id160.TryParse(shardId, out var volume)) return requester;
        var holders = locator.HoldersOf(volume);
        if (holders.Count == 0 || holders.Contains(AddressOf(requester))) return requester;
        foreach (var region in regions)
            if (holders.Contains(AddressOf(region))) return region;
        return requester;
    }

    // Only shards away from their primary move (data never moves with a shard: the primary's log has it).
    public async Task<IImmutableSet<string>> Rebalance(IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress)
    {
        if (placement is null) return ImmutableHashSet<string>.Empty;
        PrimaryTable table;
        // The shards allocated only: a check every rebalance interval costs what is in use, not the volume count.
        var shards = currentShardAllocations.Values.SelectMany(s => s).Distinct().ToArray();
        if (shards.Length == 0) return ImmutableHashSet<string>.Empty;
        try { table = await placement.Ask<PrimaryTable>(new GetPrimaryTable(shards), AskTimeout).ConfigureAwait(false); }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException) { return ImmutableHashSet<string>.Empty; }
        return Misplaced(currentShardAllocations, rebalanceInProgress, table);
    }

    public IImmutableSet<string> Misplaced(IImmutableDictionary<IActorRef, IImmutableList<string>> allocations, IImmutableSet<string> inProgress, PrimaryTable table)
    {
        var primaries = new Dictionary<string, Address>();
        for (var i = 0; i < table.Volumes.Length && i < table.Addresses.Length; i++) primaries[table.Volumes[i]] = Address.Parse(table.Addresses[i]);
        var regionAddresses = allocations.Keys.Select(AddressOf).ToHashSet();
        var move = ImmutableHashSet.CreateBuilder<string>();
        foreach (var (region, shards) in allocations)
        {
            var at = AddressOf(region);
            if (reachable is not null && !reachable(at)) continue;
            foreach (var shard in shards)
                if (!inProgress.Contains(shard) && primaries.TryGetValue(shard, out var primary) && primary != at && regionAddresses.Contains(primary))
                    move.Add(shard);
        }
        return move.ToImmutable();
    }

    private Address AddressOf(IActorRef region) =>
        region.Path.Address.HasGlobalScope ? region.Path.Address : selfAddress();
}
