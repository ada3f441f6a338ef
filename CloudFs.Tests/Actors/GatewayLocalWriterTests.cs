// The gateway tells a volume's writer on this node its requests directly: no ask, no timer, no shard region; a
// request that meets a stopped writer goes through the region after all.
using System.Collections.Concurrent;
using Akka.Actor;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class GatewayLocalWriterTests(NodeFixture fixture) : IClassFixture<NodeFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Stands in for the shard region: records what reaches it and passes it on (or not).</summary>
    private sealed class Recorder : ReceiveActor
    {
        public Recorder(IActorRef? region, ConcurrentQueue<object> seen) =>
            ReceiveAny(message =>
            {
                seen.Enqueue(message);
                region?.Forward(message);
            });
    }

    private async Task<Id160> CreateAsync()
    {
        var node = fixture.Node;
        var created = Assert.IsType<VolumeCreated>(await node.Management.Ask<IManagementMessage>(new CreateVolume(1, 16 << 20, VolumeMode.Async), Timeout));
        var volume = Id160.Parse(created.VolumeId);
        // The first request starts the volume's actor, which registers itself as the volume's writer here.
        await node.Gateway.FlushAsync(volume).AsTask().WaitAsync(Timeout);
        return volume;
    }

    private static byte[] Pattern(int seed)
    {
        var data = new byte[16384];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Fact]
    public async Task Writes_zeroes_and_flushes_of_a_volume_written_here_go_to_its_actor_without_the_shard_region()
    {
        var node = fixture.Node;
        var volume = await CreateAsync();
        var seen = new ConcurrentQueue<object>();
        // A region that never answers: a request sent there would not complete.
        var silent = node.System.ActorOf(Props.Create(() => new Recorder(null, seen)));
        var gateway = new ShardedVolumeGateway(silent, node.Store, Timeout, node.Settings.Volumes.AttemptTimeout, local: LocalVolumeWriters.Get(node.System));
        var lsnBefore = node.Store.GetVolume(volume)!.Lsn;

        var data = Pattern(11);
        await gateway.WriteAsync(volume, 4096, data, fua: false).AsTask().WaitAsync(Timeout);
        await gateway.WriteZeroesAsync(volume, 8192, 4096, fua: false).AsTask().WaitAsync(Timeout);
        await gateway.FlushAsync(volume).AsTask().WaitAsync(Timeout);

        Assert.Empty(seen);
        Assert.Equal(lsnBefore + 2, node.Store.GetVolume(volume)!.Lsn);
        var back = new byte[data.Length];
        await gateway.ReadAsync(volume, 4096, back).AsTask().WaitAsync(Timeout);
        Array.Clear(data, 4096, 4096);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task A_flush_of_an_unreplicated_volume_written_here_syncs_the_log_without_asking_any_actor()
    {
        var node = fixture.Node;
        var volume = await CreateAsync();
        var writers = LocalVolumeWriters.Get(node.System);
        Assert.True(writers.TryGet(volume, out var live));
        await node.Gateway.WriteAsync(volume, 0, Pattern(13), fua: false).AsTask().WaitAsync(Timeout);
        var seen = new ConcurrentQueue<object>();
        // Neither the region nor the volume's writer answers: a flush sent to either would not complete.
        var silent = node.System.ActorOf(Props.Create(() => new Recorder(null, seen)));
        writers.Register(volume, silent);
        try
        {
            var gateway = new ShardedVolumeGateway(silent, node.Store, Timeout, node.Settings.Volumes.AttemptTimeout, local: writers);
            var flushesBefore = fixture.Device.Flushes;
            await gateway.FlushAsync(volume).AsTask().WaitAsync(Timeout);

            Assert.Empty(seen);
            Assert.True(fixture.Device.Flushes > flushesBefore);
        }
        finally
        {
            writers.Register(volume, live);
        }
    }

    [Fact]
    public async Task A_write_told_to_a_writer_that_has_stopped_is_sent_through_the_shard_region()
    {
        var node = fixture.Node;
        var volume = await CreateAsync();
        var writers = LocalVolumeWriters.Get(node.System);
        Assert.True(writers.TryGet(volume, out var live));
        // A writer that stopped after the gateway looked it up: what is told to it becomes a dead letter.
        var stopped = node.System.ActorOf(Props.Create(() => new Recorder(null, new ConcurrentQueue<object>())));
        await stopped.GracefulStop(Timeout);
        writers.Register(volume, stopped);
        var seen = new ConcurrentQueue<object>();
        var region = node.System.ActorOf(Props.Create(() => new Recorder(node.Volumes, seen)));
        var gateway = new ShardedVolumeGateway(region, node.Store, Timeout, node.Settings.Volumes.AttemptTimeout, local: writers);
        try
        {
            var data = Pattern(12);
            await gateway.WriteAsync(volume, 0, data, fua: true).AsTask().WaitAsync(Timeout);

            Assert.Single(seen);
            var back = new byte[data.Length];
            await gateway.ReadAsync(volume, 0, back).AsTask().WaitAsync(Timeout);
            Assert.Equal(data, back);
        }
        finally
        {
            writers.Register(volume, live);
        }
    }
}
