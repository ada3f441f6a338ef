// In-process nodes whose primary's log device starts failing writes (a FaultyDevice under its log): the host gives up
// its primaries, a healthy replica takes over with every acknowledged write, writes through any node go on, the host
// shows as failed and takes no new volume, and it comes back only when restarted on a good device.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;
using Xunit.Abstractions;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class DeviceFailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<VolumeList> ListAsync(TestCluster cluster, int via) =>
        Assert.IsType<VolumeList>(await cluster[via].Management.Ask<IManagementMessage>(new ListVolumes(), Timeout));

    private static async Task AssertBytes(Id160 volume, IEnumerable<int> nodes, TestCluster cluster, long offset, byte[] expected)
    {
        foreach (var i in nodes)
        {
            var back = new byte[expected.Length];
            await cluster[i].Store.ReadAsync(volume, offset, back);
            Assert.True(expected.AsSpan().SequenceEqual(back), $"node {i} holds other bytes at {offset}");
        }
    }

    private static Task HeadsAgree(TestCluster cluster, Id160 volume, int[] nodes, long atLeastLsn) =>
        cluster.Until(() =>
        {
            var heads = nodes.Select(i => cluster[i].Store.GetVolume(volume)).ToArray();
            return heads.All(h => h is not null && h.Lsn >= atLeastLsn) && heads.Select(h => h!.CurrentVersion).Distinct().Count() == 1;
        }, Timeout, $"nodes {string.Join(",", nodes)} at the same version of {volume}, lsn ≥ {atLeastLsn}");

    [Fact]
    public async Task When_the_primarys_log_device_fails_a_replica_takes_over_with_every_acknowledged_write_and_writes_through_any_node_go_on()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var created = await cluster.CreateVolumeAsync(3, 64 << 20, VolumeMode.Sync);
        var volume = Id160.Parse(created.VolumeId);
        var failed = cluster.IndexOf(created.Hosts[0].HostId);
        var failedHost = created.Hosts[0].HostId;
        var healthy = Enumerable.Range(0, 3).Where(i => i != failed).ToArray();
        var via = cluster[healthy[0]];
        var before = TempLogPattern(1 << 20, 31);
        await via.Gateway.WriteAsync(volume, 0, before, fua: true);
        var acknowledged = cluster[failed].Store.GetVolume(volume)!.Lsn;

        cluster.Device(failed).Fail(DeviceOp.Write);
        // Through a healthy node: the first attempts meet the failed primary, the gateway asks again while placement
        // hands the volume over, and the write is acknowledged by the new primary and the other healthy replica.
        var after = TempLogPattern(1 << 20, 32);
        var started = DateTime.UtcNow;
        await via.Gateway.WriteAsync(volume, 1 << 20, after, fua: true).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"the write through a healthy node was acknowledged {(DateTime.UtcNow - started).TotalSeconds:0.0} s after the device failed");
        // And through the failed host's own node, which serves it from the new primary.
        var third = TempLogPattern(64 << 10, 33);
        await cluster[failed].Gateway.WriteAsync(volume, 2 << 20, third, fua: true).AsTask().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.NotNull(cluster[failed].Store.DeviceFailure);
        var newPrimary = healthy.Single(i => cluster[i].Store.IsWritable(volume));
        Assert.True(cluster[newPrimary].Store.GetVolume(volume)!.ViewNumber >= 1);
        Assert.False(cluster[failed].Store.IsWritable(volume));
        await HeadsAgree(cluster, volume, healthy, acknowledged + 3);
        await AssertBytes(volume, healthy, cluster, 0, before);
        await AssertBytes(volume, healthy, cluster, 1 << 20, after);
        await AssertBytes(volume, healthy, cluster, 2 << 20, third);

        // `cloudfs ls` / `/cluster`: the new primary, the volume degraded, the host failed with the errno (once
        // placement's next round has heard the new primary: a round it did not answer in keeps the last one known).
        var list = await cluster.Value(async () =>
        {
            var l = await ListAsync(cluster, healthy[1]);
            return l.Volumes.Single(v => v.Id == created.VolumeId).Primary == cluster[newPrimary].HostId.ToString() ? l : null;
        }, Timeout, "the new primary listed");
        var summary = list.Volumes.Single(v => v.Id == created.VolumeId);
        Assert.Equal(VolumeHealth.Degraded, summary.Health);
        var failure = Assert.Single(list.FailedHosts!);
        Assert.Equal(failedHost, failure.HostId);
        Assert.Contains("errno 5", failure.Reason);

        // Not chosen for a new volume: three replicas cannot be placed, two go on the healthy hosts only.
        var refused = await cluster[healthy[0]].Management.Ask<IManagementMessage>(new CreateVolume(3, 64 << 20, VolumeMode.Sync), Timeout);
        Assert.Contains("only 2 host(s) found", Assert.IsType<CommandFailed>(refused).Reason);
        var two = await cluster.CreateVolumeAsync(2, 64 << 20, VolumeMode.Sync, via: healthy[0]);
        Assert.DoesNotContain(two.Hosts, h => h.HostId == failedHost);

        // It does not come back by itself; restarted on a good device it catches up like any returning replica.
        await cluster.CrashAsync(failed);
        await cluster.RestartAsync(failed);
        var everyone = new[] { 0, 1, 2 };
        await HeadsAgree(cluster, volume, everyone, acknowledged + 3);
        Assert.False(cluster[failed].Store.IsWritable(volume));
        await AssertBytes(volume, everyone, cluster, 0, before);
        await AssertBytes(volume, everyone, cluster, 1 << 20, after);
        await AssertBytes(volume, everyone, cluster, 2 << 20, third);
        await cluster.Value(async () =>
        {
            var l = await ListAsync(cluster, healthy[0]);
            return l.FailedHosts!.Count == 0 && l.Volumes.Single(v => v.Id == created.VolumeId).Health == VolumeHealth.Healthy ? l : null;
        }, Timeout, "the restarted host no longer failed and the volume healthy");
    }

    [Fact]
    public async Task A_two_replica_volume_fails_over_with_the_share_of_the_primary_whose_device_failed_and_then_gets_a_new_replica()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var created = await cluster.CreateVolumeAsync(2, 64 << 20, VolumeMode.Sync);
        var volume = Id160.Parse(created.VolumeId);
        var failed = cluster.IndexOf(created.Hosts[0].HostId);
        var replica = cluster.IndexOf(created.Hosts[1].HostId);
        var outsider = 3 - failed - replica;
        var before = TempLogPattern(256 << 10, 41);
        await cluster[outsider].Gateway.WriteAsync(volume, 0, before, fua: true);

        // The healthy replica alone is neither a majority of two nor holds a majority of shares: the failed primary
        // counts, since it holds nothing the replica does not, and releases its share from its key file. The
        // replica takes over; the failed host, away past replace-after, is then replaced by the third host, so
        // a majority of the new set acknowledges the write.
        cluster.Device(failed).Fail(DeviceOp.Flush);
        var after = TempLogPattern(256 << 10, 42);
        var started = DateTime.UtcNow;
        await cluster.Value(async () =>
        {
            await cluster[outsider].Gateway.WriteAsync(volume, 1 << 20, after, fua: true);
            return "written";
        }, TimeSpan.FromSeconds(90), "a write after the failover and the replacement");
        output.WriteLine($"the write was acknowledged {(DateTime.UtcNow - started).TotalSeconds:0.0} s after the device failed");

        Assert.True(cluster[replica].Store.IsWritable(volume));
        Assert.False(cluster[failed].Store.IsWritable(volume));
        var set = cluster[replica].Store.GetVolume(volume)!.Replicas.Select(h => h.ToString()).ToArray();
        Assert.Equal([created.Hosts[1].HostId, cluster[outsider].HostId.ToString()], set);
        await HeadsAgree(cluster, volume, [replica, outsider], 3);
        await AssertBytes(volume, [replica, outsider], cluster, 0, before);
        await AssertBytes(volume, [replica, outsider], cluster, 1 << 20, after);
    }

    private static byte[] TempLogPattern(int length, int seed) => Engine.TempLog.Pattern(length, seed);
}
