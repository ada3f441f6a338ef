// Three in-process nodes: a member the cluster downs (as the split brain resolver downs one that stalled) does not
// end: it starts a new incarnation on the same device and address, is Up again, and its volumes are writable and
// replicated through the same gateway its front ends hold; with TLS as well (certificates loaded again). A node that is
// merely terminated (a crash) does not come back by itself.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class RejoinTests
{
    // Generous: on a loaded machine a rejoin can meet another stall, and the membership settle only after a second one.
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_downed_primary_restarts_its_membership_and_its_volume_is_writable_and_replicated_again()
    {
        await using var cluster = await TestCluster.StartAsync(3, "", (_, o) => o with { Listen = "127.0.13.1" });
        await DownedPrimaryRejoins(cluster);
    }

    [Fact]
    public async Task A_downed_member_with_tls_rejoins_with_its_certificate()
    {
        using var authority = new TestAuthority();
        await using var cluster = await TestCluster.StartAsync(3, "", authority, listen: "127.0.13.2");
        await DownedPrimaryRejoins(cluster);
    }

    private static async Task DownedPrimaryRejoins(TestCluster cluster)
    {
        // Node 0 is every other node's seed (it formed the cluster): the member downed here is another one, which
        // rejoins through it. The volume's primary is the member downed, so its volume must fail over and come back.
        var (volume, victim) = await VolumeWithPrimaryOtherThanNode0(cluster);
        var others = cluster.Live.Where(n => n != victim).ToArray();
        var gateway = victim.Gateway; // what NBD and HTTP hold: it must outlive the incarnation
        var data = Pattern(1 << 20, 1);
        await gateway.WriteAsync(volume, 0, data, fua: true);
        var old = Akka.Cluster.Cluster.Get(victim.System).SelfUniqueAddress;
        var oldSystem = victim.System;

        Akka.Cluster.Cluster.Get(others[0].System).Down(old.Address);

        // A management request (what `cloudfs cluster show` and the HTTP API send) while the old incarnation has ended
        // and the next is not up yet is answered by the next one, not lost in the ended one until it times out.
        await Eventually.Until(() => oldSystem.WhenTerminated.IsCompleted, Timeout, "the downed incarnation to end");
        var shown = await victim.AskManagementAsync<IManagementMessage>(new ShowCluster(), Timeout);
        Assert.True(shown is ClusterMembers, $"cluster show during the rejoin answered {shown}");
        Assert.Equal(2, victim.Incarnation);
        Assert.NotEqual(old, Akka.Cluster.Cluster.Get(victim.System).SelfUniqueAddress);

        // The others remove the old incarnation; the node comes back as a new one (same address, new UID), Up on all.
        await Eventually.Until(() => cluster.Live.All(n =>
            {
                var members = Akka.Cluster.Cluster.Get(n.System).State.Members;
                return members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) == 3 && members.All(m => m.UniqueAddress != old) &&
                    members.Any(m => m.Address == old.Address);
            }), Timeout, "3 Up members, the downed node's new incarnation among them");
        Assert.False(victim.Stopped.IsCompleted, "the downed node stopped instead of rejoining");
        Assert.NotEqual(old, Akka.Cluster.Cluster.Get(victim.System).SelfUniqueAddress);

        // Writable again through the gateway the node had before it was downed, and on every replica; the write
        // before the downing is still there.
        var after = Pattern(64 << 10, 2);
        await Eventually.Value(async () =>
        {
            await gateway.WriteAsync(volume, 4 << 20, after, fua: true);
            return "";
        }, Timeout, "a write through the rejoined node");
        await Eventually.Until(() =>
        {
            var heads = cluster.Live.Select(n => n.Store.GetVolume(volume)).ToArray();
            return heads.All(h => h is not null) && heads.Select(h => h!.CurrentVersion).Distinct().Count() == 1;
        }, Timeout, $"every replica of {volume} at the same version");
        foreach (var n in cluster.Live)
        {
            var back = new byte[after.Length];
            await n.Store.ReadAsync(volume, 4 << 20, back);
            Assert.Equal(after, back);
            var first = new byte[data.Length];
            await n.Store.ReadAsync(volume, 0, first);
            Assert.Equal(data, first);
        }
        // One writable holder: the rejoined node's old view of the volume did not survive as a second primary.
        Assert.Single(cluster.Live, n => n.Store.IsWritable(volume));

        // A node that is only terminated (a crash: nobody downed it) stops for good; it does not come back by itself.
        await cluster.CrashAsync(cluster.Nodes.IndexOf(victim));
        await victim.Stopped.WaitAsync(Timeout);
        Assert.Equal(2, victim.Incarnation);
    }

    /// <summary>A 3-replica sync volume whose primary is not node 0 (creation picks the primary by a random key).</summary>
    private static async Task<(Id160 Volume, CloudFsNode Primary)> VolumeWithPrimaryOtherThanNode0(TestCluster cluster)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var created = await cluster.CreateVolumeAsync(3, 64 << 20, VolumeMode.Sync);
            var primary = cluster.NodeOf(created.Hosts[0].HostId);
            if (primary != cluster[0]) return (Id160.Parse(created.VolumeId), primary);
        }
        Assert.Fail("no volume of 30 got its primary on node 1 or 2");
        return default;
    }

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }
}
