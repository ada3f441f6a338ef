// Event-driven placement (issue 14): a host reports to placement what changed since placement's last stamp of its agent
// (a full report when placement does not know the stamp: it moved, or the agent restarted), so an idle host reports no
// volume round after round and takes no follow command, while a change (a follower that stopped) is acted on at once.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class PlacementReportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    // No sweep during a test: what placement asks for and sends is what the reports of changes call for.
    private const string NoSweep = "cloudfs.placement.sweep = 10m\n";

    private static async Task AllHealthy(TestCluster cluster, int count) =>
        await Eventually.Value(async () =>
        {
            var list = Assert.IsType<VolumeList>(await cluster[0].Management.Ask<IManagementMessage>(new ListVolumes(), Timeout));
            return list.Volumes.Count == count && list.Volumes.All(v => v.Health == VolumeHealth.Healthy) ? list : null;
        }, Timeout, $"{count} healthy volumes");

    private static Task<VolumeReports> Report(ActorSystem node, ReportVolumes ask) =>
        node.ActorSelection(HostAgent.Path).Ask<VolumeReports>(ask, Timeout);

    [Fact]
    public async Task A_host_reports_only_what_changed_since_the_stamp_it_gave_and_everything_to_a_stamp_of_another_epoch()
    {
        await using var cluster = await TestCluster.StartAsync(1, NoSweep, null, "127.0.36.1");
        var node = cluster[0].System;
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add((await cluster.CreateVolumeAsync(1, 1 << 20, VolumeMode.Sync)).VolumeId);

        var full = await Report(node, ReportVolumes.Full);
        Assert.True(full.Full);
        Assert.Equal(ids.Order(), full.Volumes.Select(v => v.Id).Order());

        // Nothing changed since: no volume in the answer.
        var idle = await Report(node, new ReportVolumes(full.Stamp, full.Epoch));
        Assert.False(idle.Full);
        Assert.Empty(idle.Volumes);
        Assert.Empty(idle.Removed ?? []);

        await cluster[0].Gateway.WriteAsync(Id160.Parse(ids[1]), 0, new byte[4096], fua: true);
        var written = await Report(node, new ReportVolumes(idle.Stamp, idle.Epoch));
        Assert.False(written.Full);
        Assert.Equal(ids[1], Assert.Single(written.Volumes).Id);

        // A stamp of another epoch (placement asking an agent it did not ask before): every volume.
        var other = await Report(node, new ReportVolumes(written.Stamp, written.Epoch + 1));
        Assert.True(other.Full);
        Assert.Equal(ids.Order(), other.Volumes.Select(v => v.Id).Order());
    }

    [Fact]
    public async Task Placement_asks_an_idle_host_for_no_volume_and_sends_no_follow_command_round_after_round()
    {
        await using var cluster = await TestCluster.StartAsync(2, NoSweep, null, "127.0.36.2");
        for (var i = 0; i < 4; i++) await cluster.CreateVolumeAsync(2, 1 << 20, VolumeMode.Sync);
        await AllHealthy(cluster, 4);

        var reports = cluster.Live.Select(n => n.Replication.PlacementReports).ToArray();
        var volumes = cluster.Live.Select(n => n.Replication.PlacementReportedVolumes).ToArray();
        var follows = cluster.Live.Select(n => n.Replication.PlacementFollowCommands).ToArray();
        // Four more rounds on each host.
        await cluster.Until(() => cluster.Live.Select((n, i) => n.Replication.PlacementReports >= reports[i] + 4).All(x => x), Timeout,
            "four more placement rounds");

        Assert.Equal(volumes, cluster.Live.Select(n => n.Replication.PlacementReportedVolumes).ToArray());
        Assert.Equal(follows, cluster.Live.Select(n => n.Replication.PlacementFollowCommands).ToArray());
    }

    [Fact]
    public async Task A_replica_whose_follower_stopped_is_told_to_follow_again()
    {
        await using var cluster = await TestCluster.StartAsync(2, NoSweep, null, "127.0.36.3");
        var created = await cluster.CreateVolumeAsync(2, 1 << 20, VolumeMode.Sync);
        await AllHealthy(cluster, 1);
        var replica = cluster[cluster.IndexOf(created.Hosts[1].HostId)];
        var follows = replica.Replication.PlacementFollowCommands;
        var follower = HostAgent.Path + "/" + created.VolumeId;

        await replica.System.ActorSelection(follower).ResolveOne(Timeout);
        replica.System.ActorSelection(follower).Tell(VolumeFollower.Stop.Instance);

        // The host reports its follower stopped; placement tells it to follow, and a new follower runs.
        await cluster.Until(() => replica.Replication.PlacementFollowCommands > follows, Timeout, "a follow command to the replica");
        await Eventually.Value(async () =>
        {
            try { return await replica.System.ActorSelection(follower).ResolveOne(TimeSpan.FromSeconds(1)); }
            catch (ActorNotFoundException) { return null; }
        }, Timeout, "the replica's follower running again");
        await AllHealthy(cluster, 1);
    }
}
