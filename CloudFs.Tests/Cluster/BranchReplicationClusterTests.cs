// A branch of a replicated volume is replicated like the volume: the other hosts of its replica set follow it, so a
// sync branch acknowledges writes and flushes (a majority holds them) and every host reads it alike. And a sync
// volume's request that no majority answers fails after cloudfs.volumes.ask-timeout instead of waiting forever.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class BranchReplicationClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const int VolumeSize = 4 << 20;

    [Fact]
    public async Task A_branch_of_a_sync_volume_is_followed_by_its_replica_set_and_acknowledges_writes_and_flushes()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var created = await cluster.CreateVolumeAsync(3, VolumeSize, VolumeMode.Sync);
        var volume = Id160.Parse(created.VolumeId);
        var p = cluster.IndexOf(created.Hosts[0].HostId);
        var parent = TempLog.Pattern(1 << 20, 7);
        await cluster[p].Gateway.WriteAsync(volume, 0, parent, fua: true);
        var version = cluster[p].Store.GetVolume(volume)!.CurrentVersion;

        // Branched on the primary through its management actor, as `cloudfs branch` asks.
        var made = await TestCluster.AskAsync<VolumeCreated>(cluster[p], new BranchVolume(version.ToString()), Timeout);
        var branch = Id160.Parse(made.VolumeId);

        // A write and a flush of the branch are acknowledged: a majority of the set holds them (before, no host
        // followed a branch, and both waited forever). Bounded here only so that a hang fails the test.
        var mine = TempLog.Pattern(64 << 10, 8);
        await cluster[p].Gateway.WriteAsync(branch, 256 << 10, mine, fua: false).AsTask().WaitAsync(Timeout);
        await cluster[p].Gateway.FlushAsync(branch).AsTask().WaitAsync(Timeout);

        // Every host of the set holds the branch at the primary's head and reads it alike: the parent's bytes under
        // the branch's own write.
        await cluster.HeadsAgree(branch, cluster[p].Store.GetVolume(branch)!.Lsn, Timeout);
        var expected = parent.ToArray();
        mine.CopyTo(expected.AsSpan(256 << 10));
        foreach (var node in cluster.Live)
        {
            var back = new byte[expected.Length];
            await node.Store.ReadAsync(branch, 0, back);
            Assert.True(expected.AsSpan().SequenceEqual(back), $"host {node.HostId} does not read the branch as its primary wrote it");
            Assert.Equal(version, node.Store.GetVolume(branch)!.BranchedFrom);
        }

        // And placement counts it healthy: every replica current.
        await Eventually.Value(async () =>
        {
            var listed = await TestCluster.AskAsync<VolumeList>(cluster[p], new ListVolumes(), Timeout);
            return listed.Volumes.FirstOrDefault(v => v.Id == made.VolumeId) is { Health: "healthy" } v ? v : null;
        }, Timeout, $"branch {branch} listed healthy");
    }

    [Fact]
    public async Task A_sync_write_no_majority_acknowledges_fails_after_the_ask_timeout_on_the_primarys_own_gateway()
    {
        // Four hosts: the volume's two other replicas go down, the primary and the fourth host go on (no replacement).
        await using var cluster = await TestCluster.StartAsync(4, "cloudfs.volumes.ask-timeout = 3s\ncloudfs.placement.replace-after = 10m\n");
        var created = await cluster.CreateVolumeAsync(3, VolumeSize, VolumeMode.Sync);
        var volume = Id160.Parse(created.VolumeId);
        var p = cluster.IndexOf(created.Hosts[0].HostId);
        await cluster[p].Gateway.WriteAsync(volume, 0, TempLog.Pattern(4096, 1), fua: true);
        await cluster.CrashAsync(cluster.IndexOf(created.Hosts[1].HostId));
        await cluster.CrashAsync(cluster.IndexOf(created.Hosts[2].HostId));

        // The primary's own gateway tells its actor directly (no ask, no timer): the quorum's own wait bounds it.
        var write = cluster[p].Gateway.WriteAsync(volume, 4096, TempLog.Pattern(4096, 2), fua: true).AsTask();
        var failed = await Assert.ThrowsAnyAsync<Exception>(() => write.WaitAsync(Timeout));
        Assert.IsNotType<TimeoutException>(failed);
        Assert.Contains("no majority", failed.Message);
        var flush = cluster[p].Gateway.FlushAsync(volume).AsTask();
        failed = await Assert.ThrowsAnyAsync<Exception>(() => flush.WaitAsync(Timeout));
        Assert.IsNotType<TimeoutException>(failed);
        Assert.Contains("no majority", failed.Message);
    }

    [Fact]
    public async Task Any_node_branches_a_version_it_does_not_hold_through_a_node_that_holds_it()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var created = await cluster.CreateVolumeAsync(1, VolumeSize, VolumeMode.Async);
        var volume = Id160.Parse(created.VolumeId);
        var holder = cluster.NodeOf(created.Hosts[0].HostId);
        var data = TempLog.Pattern(64 << 10, 11);
        await holder.Gateway.WriteAsync(volume, 0, data, fua: true);
        var version = holder.Store.GetVolume(volume)!.CurrentVersion;
        var asked = cluster.Live.First(n => n.HostId != holder.HostId);
        Assert.Null(asked.Store.GetVolume(volume));

        // By version id (any live member that holds it answers) and by volume id (its primary): the holder makes each.
        foreach (var name in new[] { version.ToString(), volume.ToString() })
        {
            var made = await TestCluster.AskAsync<VolumeCreated>(asked, new BranchVolume(name), Timeout);
            Assert.Equal(holder.HostId.ToString(), Assert.Single(made.Hosts).HostId);
            var branch = holder.Store.GetVolume(Id160.Parse(made.VolumeId));
            Assert.NotNull(branch);
            Assert.Equal(version, branch.BranchedFrom);
            var back = new byte[data.Length];
            await holder.Store.ReadAsync(branch.BaseId, 0, back);
            Assert.True(data.AsSpan().SequenceEqual(back), $"the branch made through another node for {name} does not read as the volume");
        }

        // A version nobody holds is refused by the node asked, naming it.
        var unknown = Id160.Random().ToString();
        var refused = await asked.Management.Ask<IManagementMessage>(new BranchVolume(unknown), Timeout);
        Assert.Contains(unknown, Assert.IsType<CommandFailed>(refused).Reason);
    }
}
