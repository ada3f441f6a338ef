// A node whose log runs out of space: the writes that do not fit fail with LogFullException, nothing else does.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class CloudFsNodeFullLogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudfs-node-full-").FullName;

    [Fact]
    public async Task Out_of_space_fails_only_the_writes_that_do_not_fit()
    {
        await using var node = await CloudFsNode.StartAsync(NodeFixture.Options(_dir) with { Size = 48 << 20 });
        async Task<Id160> Create()
        {
            var created = (VolumeCreated)await node.Management.Ask<IManagementMessage>(new CreateVolume(1, 256 << 20, VolumeMode.Async), TimeSpan.FromSeconds(20));
            return Id160.Parse(created.VolumeId);
        }
        var keep = await Create();
        var kept = new byte[4096];
        Random.Shared.NextBytes(kept);
        await node.Gateway.WriteAsync(keep, 0, kept, fua: true);

        var filler = await Create();
        var chunk = new byte[1 << 20];
        Random.Shared.NextBytes(chunk);
        LogFullException? full = null;
        for (var i = 0; i < 256 && full is null; i++)
        {
            try { await node.Gateway.WriteAsync(filler, (long)i << 20, chunk, fua: false); }
            catch (LogFullException e) { full = e; }
        }
        Assert.NotNull(full);

        // Other volumes still read, and the full volume still answers (with the same error) instead of hanging.
        var back = new byte[4096];
        await node.Gateway.ReadAsync(keep, 0, back);
        Assert.Equal(kept, back);
        await Assert.ThrowsAsync<LogFullException>(async () => await node.Gateway.WriteAsync(filler, 255L << 20, chunk, fua: false));
        await node.Gateway.ReadAsync(filler, 0, new byte[4096]);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
