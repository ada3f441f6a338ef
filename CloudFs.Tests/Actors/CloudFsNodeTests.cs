// A one-node CloudFsNode end to end inside the test process: the gateway over the shard region, the management
// actor, and the CLI's ManagementClient through ClusterClient.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class CloudFsNodeTests(NodeFixture fixture) : IClassFixture<NodeFixture>
{
    private CloudFsNode Node => fixture.Node;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private async Task<Id160> CreateAsync(long size = 16 << 20)
    {
        var created = Assert.IsType<VolumeCreated>(await Node.Management.Ask<IManagementMessage>(new CreateVolume(1, size, VolumeMode.Async), Timeout));
        var host = Assert.Single(created.Hosts);
        Assert.Equal(Node.HostId.ToString(), host.HostId);
        return Id160.Parse(created.VolumeId);
    }

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public void A_started_node_keeps_enough_pool_threads_for_blocking_engine_reads_beside_its_actors()
    {
        // A node in any process (the executable or a test's in-process cluster) raises the pool's floor itself: before,
        // only the executable did, and in-process hosts starved under load left placement's votes unanswered.
        Assert.NotNull(Node);
        ThreadPool.GetMinThreads(out var workers, out _);
        Assert.True(workers >= ThreadPoolFloor.Workers, $"the pool keeps {workers} worker threads ready, fewer than {ThreadPoolFloor.Workers}");
    }

    [Fact]
    public async Task Gateway_writes_reads_zeroes_flushes_and_maps_a_volume()
    {
        var volume = await CreateAsync();
        var gateway = Node.Gateway;
        var data = Pattern(65536, 1);
        await gateway.WriteAsync(volume, 0, data, fua: false);
        await gateway.WriteAsync(volume, 65536, Pattern(4096, 2), fua: true);
        await gateway.WriteZeroesAsync(volume, 4096, 8192, fua: false);
        await gateway.FlushAsync(volume);
        var back = new byte[65536 + 4096];
        await gateway.ReadAsync(volume, 0, back);
        var expected = data.Concat(Pattern(4096, 2)).ToArray();
        Array.Clear(expected, 4096, 8192);
        Assert.Equal(expected, back);
        var map = await gateway.MapAsync(volume, 0, 1 << 20);
        Assert.Equal(1 << 20, map.Sum(r => r.Length));
        Assert.False(map.Last().Allocated);
        Assert.Equal(4, (await gateway.GetAsync(volume))!.Lsn);
        Assert.Contains((await gateway.ListAsync()), v => v.BaseId == volume);
    }

    [Fact]
    public async Task Gateway_maps_failures_to_the_engine_exceptions()
    {
        var volume = await CreateAsync();
        await Assert.ThrowsAsync<InvalidRangeException>(async () => await Node.Gateway.WriteAsync(volume, 100, new byte[512], false));
        await Assert.ThrowsAsync<InvalidRangeException>(async () => await Node.Gateway.ReadAsync(volume, 16 << 20, new byte[512]));
        var unknown = Id160.Random();
        await Assert.ThrowsAsync<VolumeNotFoundException>(async () => await Node.Gateway.ReadAsync(unknown, 0, new byte[512]));
        Assert.Null(await Node.Gateway.GetAsync(unknown));
    }

    [Fact]
    public async Task Management_creates_and_lists_volumes_and_refuses_more_replicas_than_hosts()
    {
        var volume = await CreateAsync(8 << 20);
        var list = Assert.IsType<VolumeList>(await Node.Management.Ask<IManagementMessage>(new ListVolumes(), Timeout));
        var line = Assert.Single(list.Volumes, v => v.Id == volume.ToString());
        Assert.Equal((8L << 20, VolumeMode.Async, Node.HostId.ToString(), volume.ToString()), (line.Size, line.Mode, line.Primary, line.Version));
        Assert.Equal([Node.HostId.ToString()], line.Replicas);
        var single = Assert.IsType<VolumeSummary>(await Node.Management.Ask<IManagementMessage>(new GetVolume(volume.ToString()), Timeout));
        Assert.Equal((line.Id, line.Size, line.Version), (single.Id, single.Size, single.Version));
        Assert.Equal(line.Replicas, single.Replicas);

        var refused = Assert.IsType<CommandFailed>(await Node.Management.Ask<IManagementMessage>(new CreateVolume(2, 8 << 20, VolumeMode.Sync), Timeout));
        Assert.Equal("only 1 host(s) found", refused.Reason);
        Assert.IsType<CommandFailed>(await Node.Management.Ask<IManagementMessage>(new CreateVolume(1, 1000, VolumeMode.Sync), Timeout));
        Assert.IsType<CommandFailed>(await Node.Management.Ask<IManagementMessage>(new GetVolume("nope"), Timeout));
    }

    [Fact]
    public async Task Management_shows_the_cluster_with_host_ids_and_sharding()
    {
        var members = Assert.IsType<ClusterMembers>(await Node.Management.Ask<IManagementMessage>(new ShowCluster(), Timeout));
        var self = Assert.Single(members.Members);
        Assert.Equal(("Up", "Reachable", Node.HostId.ToString()), (self.Status, self.Reachability, self.HostId));
        Assert.Equal(members.SelfAddress, self.Address);
        Assert.Equal(self.Address, members.Leader);
        Assert.EndsWith("Count: 1\n", ManagementFormat.ClusterShow(members));

        var leader = Assert.IsType<CommandOutput>(await Node.Management.Ask<IManagementMessage>(new ClusterCommand("leader", null), Timeout));
        Assert.Equal(self.Address + "\n", leader.Text);
        var regions = Assert.IsType<CommandOutput>(await Node.Management.Ask<IManagementMessage>(new ShardingCommand("regions"), Timeout));
        Assert.Contains($"{CloudFsNode.VolumeTypeName} {self.Address}", regions.Text);
        Assert.IsType<CommandFailed>(await Node.Management.Ask<IManagementMessage>(new ClusterCommand("explode", null), Timeout));
    }

    [Fact]
    public async Task ManagementClient_round_trips_through_the_receptionist()
    {
        await using var client = await ManagementClient.ConnectAsync([$"127.0.0.1:{Node.Options.AkkaPort}"]);
        var created = Assert.IsType<VolumeCreated>(await client.AskAsync(new CreateVolume(1, 1 << 20, VolumeMode.Sync), Timeout));
        var list = Assert.IsType<VolumeList>(await client.AskAsync(new ListVolumes(), Timeout));
        Assert.Contains(list.Volumes, v => v.Id == created.VolumeId && v.Mode == VolumeMode.Sync);
        var refused = Assert.IsType<CommandFailed>(await client.AskAsync(new CreateVolume(3, 1 << 20, VolumeMode.Sync), Timeout));
        Assert.Equal("only 1 host(s) found", refused.Reason);
    }

    [Fact]
    public async Task ManagementClient_says_clearly_when_no_node_answers()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var client = await ManagementClient.ConnectAsync([$"127.0.0.1:{port}"]);
        var e = await Assert.ThrowsAsync<TimeoutException>(() => client.AskAsync(new ListVolumes(), TimeSpan.FromSeconds(2)));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("no CloudFS node answered", e.Message);
    }
}
