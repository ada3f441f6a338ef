// A node's memory of the members it refused as hosts: every refusal counts, the last 64 are kept (oldest forgotten
// first), and a refusal outlives the member's removal from ProvenHosts.
using Akka.Actor;
using Akka.Cluster;
using CloudFs.Actors.Identity;

namespace CloudFs.Tests.Security;

public sealed class IdentityRefusalsTests
{
    private static UniqueAddress Member(int i) => new(new Address("akka.tcp", "cloudfs", "127.0.30.9", 4000 + i), i);

    [Fact]
    public void A_refusal_is_remembered_after_the_member_is_removed_and_only_the_last_64_are_kept()
    {
        var refusals = new IdentityRefusals();
        var proven = new ProvenHosts(certified: true, refusals);
        proven.Refuse(Member(0), "member 0 is not that host");
        proven.Forget(Member(0), removed: true);

        Assert.False(proven.IsRefused(Member(0).Address.ToString()));
        var kept = Assert.Single(refusals.Recent);
        Assert.Equal((Member(0).Address.ToString(), 0L, "member 0 is not that host"), (kept.Address, kept.Uid, kept.Reason));

        for (var i = 1; i <= IdentityRefusals.Capacity; i++) proven.Refuse(Member(i), $"member {i} is not that host");
        Assert.Equal(IdentityRefusals.Capacity + 1, refusals.Total);
        Assert.Equal(IdentityRefusals.Capacity, refusals.Recent.Count);
        Assert.Equal(Member(1).Address.ToString(), refusals.Recent[0].Address);
        Assert.Equal(Member(IdentityRefusals.Capacity).Address.ToString(), refusals.Recent[^1].Address);
    }
}
