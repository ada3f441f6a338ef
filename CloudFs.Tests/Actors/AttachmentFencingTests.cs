// Fencing: the volume's writer (its VolumeActor on the primary) refuses a write, zero-write or flush made under a
// read-write attachment whose lease was superseded (another holder took the volume, or it was detached), however late
// it arrives; the holder's own requests pass, and requests made under no attachment (internal writers, HTTP) too.
using Akka.Actor;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;
using CloudFs.Tests.Support;

namespace CloudFs.Tests.Actors;

public sealed class AttachmentFencingTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudfs-fencing-").FullName;
    private CloudFsNode _node = null!;

    public async Task InitializeAsync() =>
        _node = await CloudFsNode.StartAsync(NodeFixture.Options(_dir) with { Listen = "127.0.51.1" }).WaitAsync(TimeSpan.FromSeconds(60));

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private async Task<Id160> CreateAsync()
    {
        var created = Assert.IsType<VolumeCreated>(await _node.Management.Ask<IManagementMessage>(new CreateVolume(1, 16 << 20, VolumeMode.Async), Timeout));
        return Id160.Parse(created.VolumeId);
    }

    /// <summary>The lease, once the new writer's census of the members has ended its grace.</summary>
    private Task<AttachmentGranted> AttachAsync(Id160 volume, string holder) =>
        Eventually.Value(async () => await _node.Gateway.AcquireAttachmentAsync(new AcquireAttachment(volume.ToString(), holder, 0)) as AttachmentGranted,
            Timeout, $"{holder} to get the read-write attachment");

    private static byte[] Pattern(int seed)
    {
        var data = new byte[8192];
        new Random(seed).NextBytes(data);
        return data;
    }

    private async Task<byte[]> ReadAsync(Id160 volume)
    {
        var back = new byte[8192];
        await _node.Gateway.ReadAsync(volume, 0, back);
        return back;
    }

    [Fact]
    public async Task A_write_under_a_superseded_attachment_is_refused_and_changes_nothing_and_the_holders_passes()
    {
        var volume = await CreateAsync();
        var a = await AttachAsync(volume, "A");
        var first = Pattern(1);
        await _node.Gateway.WriteAsync(volume, 0, first, fua: false, attachment: a.Lease).AsTask().WaitAsync(Timeout);

        // `cloudfs detach --force`: B attaches at once, while A (cut off, say) has not been told and still sends.
        Assert.Equal("A", (await _node.Gateway.ReleaseAttachmentAsync(new ReleaseAttachment(volume.ToString(), 0, Force: true))).Holder);
        var b = Assert.IsType<AttachmentGranted>(await _node.Gateway.AcquireAttachmentAsync(new AcquireAttachment(volume.ToString(), "B", 0)));
        var lsn = _node.Store.GetVolume(volume)!.Lsn;

        var refused = await Assert.ThrowsAsync<AttachmentFencedException>(() =>
            _node.Gateway.WriteAsync(volume, 0, Pattern(2), fua: true, attachment: a.Lease).AsTask().WaitAsync(Timeout));
        Assert.Contains("revoked", refused.Message);
        await Assert.ThrowsAsync<AttachmentFencedException>(() => _node.Gateway.WriteZeroesAsync(volume, 0, 4096, fua: false, attachment: a.Lease).AsTask().WaitAsync(Timeout));
        // Its flush too: on this node the gateway answers it without the actor, and checks the lease as the actor does.
        await Assert.ThrowsAsync<AttachmentFencedException>(() => _node.Gateway.FlushAsync(volume, attachment: a.Lease).AsTask().WaitAsync(Timeout));
        Assert.Equal(lsn, _node.Store.GetVolume(volume)!.Lsn);
        Assert.Equal(first, await ReadAsync(volume));

        // The holder's writes pass, and so do writes under no attachment (internal writers, HTTP).
        var second = Pattern(3);
        await _node.Gateway.WriteAsync(volume, 0, second, fua: false, attachment: b.Lease).AsTask().WaitAsync(Timeout);
        await _node.Gateway.FlushAsync(volume, attachment: b.Lease).AsTask().WaitAsync(Timeout);
        Assert.Equal(second, await ReadAsync(volume));
        await _node.Gateway.WriteZeroesAsync(volume, 4096, 4096, fua: false).AsTask().WaitAsync(Timeout);
        Array.Clear(second, 4096, 4096);
        Assert.Equal(second, await ReadAsync(volume));
    }

    [Fact]
    public async Task Through_the_shard_region_the_volumes_actor_refuses_a_superseded_attachments_writes_and_flushes()
    {
        var volume = await CreateAsync();
        // No local shortcut: every request is an ask to the volume's actor.
        var gateway = new ShardedVolumeGateway(_node.Volumes, _node.Store, Timeout, _node.Settings.Volumes.AttemptTimeout);
        var a = await AttachAsync(volume, "A");
        // Taken over: the lease lapsed, say, and B took it (force stands in for the wait).
        var b = Assert.IsType<AttachmentGranted>(await gateway.AcquireAttachmentAsync(new AcquireAttachment(volume.ToString(), "B", 0, Force: true)));
        var lsn = _node.Store.GetVolume(volume)!.Lsn;
        var refused = await Assert.ThrowsAsync<AttachmentFencedException>(() => gateway.WriteAsync(volume, 0, Pattern(4), fua: false, attachment: a.Lease).AsTask().WaitAsync(Timeout));
        Assert.Contains("attached read-write by B", refused.Message);
        await Assert.ThrowsAsync<AttachmentFencedException>(() => gateway.FlushAsync(volume, attachment: a.Lease).AsTask().WaitAsync(Timeout));
        Assert.Equal(lsn, _node.Store.GetVolume(volume)!.Lsn);
        Assert.Equal(new byte[8192], await ReadAsync(volume));
        await gateway.WriteAsync(volume, 0, Pattern(5), fua: false, attachment: b.Lease).AsTask().WaitAsync(Timeout);
        await gateway.FlushAsync(volume, attachment: b.Lease).AsTask().WaitAsync(Timeout);
        Assert.Equal(Pattern(5), await ReadAsync(volume));
    }
}
