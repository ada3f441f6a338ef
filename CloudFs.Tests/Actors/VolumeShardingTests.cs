// The volume shard routing: entity id = shard id = volume id; allocation only on holders, never rebalanced.
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

    private sealed class FixedLocator(Dictionary<Id160, Address[]> holders) : IVolumeLocator
    {
        public IReadOnlyCollection<Address> HoldersOf(Id160 volume) => holders.TryGetValue(volume, out var a) ? a : [];
    }

    [Fact]
    public void Entity_and_shard_ids_are_the_volume_id()
    {
        var volume = Id160.Random();
        var extractor = VolumeMessageExtractor.Instance;
        Assert.Equal(volume.ToString(), extractor.EntityId(new Flush(volume)));
        Assert.Equal(volume.ToString(), extractor.ShardId(new Flush(volume)));
        Assert.Null(extractor.EntityId("not a volume message"));
    }

    [Fact]
    public async Task A_shard_goes_to_a_region_on_a_holder_never_elsewhere_and_never_moves()
    {
        var self = new Address("akka.tcp", "cloudfs", "127.0.0.1", 4053);
        var other = new Address("akka.tcp", "cloudfs", "127.0.0.2", 4053);
        var local = CreateTestProbe().Ref; // a local region: its path has no host, so it stands for self
        var remote = new RemoteLookingRef(other);
        var here = Id160.Random();
        var there = Id160.Random();
        var strategy = new VolumeAllocationStrategy(new FixedLocator(new() { [here] = [self], [there] = [other] }), () => self);
        var regions = ImmutableDictionary<IActorRef, IImmutableList<string>>.Empty
            .Add(local, ImmutableList<string>.Empty).Add(remote, ImmutableList<string>.Empty);

        Assert.Same(local, await strategy.AllocateShard(local, here.ToString(), regions));
        Assert.Same(remote, await strategy.AllocateShard(local, there.ToString(), regions));
        Assert.Same(local, await strategy.AllocateShard(remote, here.ToString(), regions));
        Assert.Empty(await strategy.Rebalance(regions, ImmutableHashSet<string>.Empty));
    }

    private sealed class RemoteLookingRef(Address address) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(address) / "system" / "sharding" / "volume";
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }
}
