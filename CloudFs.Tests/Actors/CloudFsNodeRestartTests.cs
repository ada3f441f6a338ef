// A node that is stopped and started again on the same device keeps its host id, volumes and data.
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using Akka.Actor;

namespace CloudFs.Tests.Actors;

public sealed class CloudFsNodeRestartTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudfs-node-restart-").FullName;

    [Fact]
    public async Task A_restarted_node_serves_the_same_volume_and_data()
    {
        var data = new byte[8192];
        Random.Shared.NextBytes(data);
        Id160 volume, host;
        await using (var node = await CloudFsNode.StartAsync(NodeFixture.Options(_dir)))
        {
            host = node.HostId;
            var created = (VolumeCreated)await node.Management.Ask<IManagementMessage>(new CreateVolume(1, 1 << 20, VolumeMode.Async), TimeSpan.FromSeconds(20));
            volume = Id160.Parse(created.VolumeId);
            await node.Gateway.WriteAsync(volume, 512, data, fua: false);
        }
        await using (var node = await CloudFsNode.StartAsync(NodeFixture.Options(_dir)))
        {
            Assert.Equal(host, node.HostId);
            var back = new byte[8192];
            await node.Gateway.ReadAsync(volume, 512, back);
            Assert.Equal(data, back);
            Assert.Equal(2, (await node.Gateway.GetAsync(volume))!.Lsn);
        }
    }

    [Fact]
    public async Task A_device_held_by_a_running_node_cannot_be_opened_by_a_second_one()
    {
        await using var node = await CloudFsNode.StartAsync(NodeFixture.Options(_dir));
        await Assert.ThrowsAsync<DeviceException>(() => CloudFsNode.StartAsync(NodeFixture.Options(_dir)));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
