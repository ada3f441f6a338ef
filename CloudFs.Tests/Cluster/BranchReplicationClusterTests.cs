// A branch of a replicated volume is replicated like the volume: the other hosts of its replica set follow it, so a
// sync branch acknowledges writes and flushes (a majority holds them) and every host reads it alike. And a sync
// volume's request that no majority answers fails after cloudfs.volumes.ask-timeout instead of waiting forever.
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
}
