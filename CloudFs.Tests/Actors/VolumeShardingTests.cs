// The volume shard routing: one shard per host ("h-" and its id), named by the envelope a message travels in, entity
// id = volume id; a host's shard goes to that host's region (the requester's while it has none) and moves only back to
// its host; a volume actor in another host's shard is never the writer.
using System.Collections.Immutable;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class VolumeShardingTests : TestKit
{
    public VolumeShardingTests() : base("akka.actor.provider = local", "volume-sharding-tests") { }

    [Fact]
    public void The_shard_is_the_host_the_envelope_names_and_the_entity_the_volume()
    {
        var volume = Id160.Random();
        var host = Id160.Random();
        var extractor = VolumeMessageExtractor.Instance;
        var flush = new Flush(volume);
        var envelope = new VolumeEnvelope(host, flush);
        Assert.Equal(volume.ToString(), extractor.EntityId(envelope));
        Assert.Equal("h-" + host, extractor.ShardId(envelope));
        Assert.Equal(host, HostShard.HostOf(extractor.ShardId(envelope)!));
        Assert.Same(flush, extractor.EntityMessage(envelope));
        // Without an envelope a volume message names no host: not routed.
        Assert.Null(extractor.EntityId(flush));
        Assert.Null(extractor.ShardId(flush));
        Assert.Null(extractor.EntityId("not a volume message"));
        Assert.Null(HostShard.HostOf(volume.ToString()));
    }

    [Fact]
    public async Task A_hosts_shard_goes_to_its_region_else_to_the_requester_and_moves_back_once_its_region_is_there()
    {
        var self = new Address("akka.tcp", "cloudfs", "127.0.0.1", 4053);
        var other = new Address("akka.tcp", "cloudfs", "127.0.0.2", 4053);
        var dead = new Address("akka.tcp", "cloudfs", "127.0.0.3", 4053);
        var local = CreateTestProbe().Ref; // a local region: its path has no host, so it stands for self
        var remote = new RemoteLookingRef(other);
        var unreachable = new RemoteLookingRef(dead);
        var here = Id160.Random();
        var there = Id160.Random();
        var away = Id160.Random(); // no member proved to be it
        var onDead = Id160.Random();
        var hosts = new Dictionary<Id160, Address> { [here] = self, [there] = other, [onDead] = dead };
        var strategy = new VolumeAllocationStrategy(h => hosts.TryGetValue(h, out var a) ? a : null, () => self, reachable: a => a != dead);
        var regions = ImmutableDictionary<IActorRef, IImmutableList<string>>.Empty
            .Add(local, ImmutableList<string>.Empty).Add(remote, ImmutableList<string>.Empty);

        Assert.Same(local, await strategy.AllocateShard(remote, HostShard.Of(here), regions));
        Assert.Same(remote, await strategy.AllocateShard(local, HostShard.Of(there), regions));
        Assert.Same(local, await strategy.AllocateShard(local, HostShard.Of(away), regions));
        Assert.Same(remote, await strategy.AllocateShard(remote, HostShard.Of(away), regions));

        // There's shard on this member (allocated while there had no region) moves to there; the rest stay.
        var allocations = ImmutableDictionary<IActorRef, IImmutableList<string>>.Empty
            .Add(local, ImmutableList.Create(HostShard.Of(here), HostShard.Of(there), HostShard.Of(away), HostShard.Of(onDead)))
            .Add(remote, ImmutableList<string>.Empty)
            .Add(unreachable, ImmutableList.Create(HostShard.Of(here)));
        Assert.Equal([HostShard.Of(there)], await strategy.Rebalance(allocations, ImmutableHashSet<string>.Empty));
        Assert.Empty(await strategy.Rebalance(allocations, ImmutableHashSet.Create(HostShard.Of(there))));
    }

    private sealed class RemoteLookingRef(Address address) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(address) / "system" / "sharding" / "volume";
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }
}
