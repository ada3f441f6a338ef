// The gateway's repeated attempts of a slow write: appended once, and never read from the caller's reused buffer.
using System.Collections.Concurrent;
using Akka.Actor;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Management;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class GatewayRepeatTests(NodeFixture fixture) : IClassFixture<NodeFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Between the gateway and the shard region: records every write, passes the first attempt of each
    /// request on at once and holds its repeats until <see cref="Release"/>.</summary>
    private sealed class Relay : ReceiveActor
    {
        public sealed record Release;

        public Relay(IActorRef region, ConcurrentQueue<Write> seen)
        {
            var first = new HashSet<long>();
            var held = new List<(object Message, IActorRef Sender)>();
            var released = false;
            Receive<Release>(_ =>
            {
                released = true;
                foreach (var (message, sender) in held) region.Tell(message, sender);
                held.Clear();
            });
            ReceiveAny(message =>
            {
                if (message is VolumeEnvelope { Message: Write w })
                {
                    seen.Enqueue(w);
                    if (!first.Add(w.RequestId) && !released) { held.Add((message, Sender)); return; }
                }
                region.Forward(message);
            });
        }
    }

    [Fact]
    public async Task A_write_slower_than_an_attempt_is_appended_once_and_its_repeats_carry_a_copy_of_the_data()
    {
        var node = fixture.Node;
        var created = Assert.IsType<VolumeCreated>(await node.Management.Ask<IManagementMessage>(new CreateVolume(1, 16 << 20, VolumeMode.Async), Timeout));
        var volume = Id160.Parse(created.VolumeId);
        var seen = new ConcurrentQueue<Write>();
        var relay = node.System.ActorOf(Props.Create(() => new Relay(node.Volumes, seen)));
        // Attempts every 20, 40, 80 ms ...: a write held at the device is asked again several times.
        var counters = new CloudFs.Actors.Replication.ReplicationCounters();
        var gateway = new ShardedVolumeGateway(relay, node.Store, Timeout, placement: relay, attemptTimeout: TimeSpan.FromMilliseconds(20), counters: counters);
        var lsnBefore = node.Store.GetVolume(volume)!.Lsn;

        var data = new byte[65536];
        new Random(5).NextBytes(data);
        var original = data.ToArray();
        using var hold = new ManualResetEventSlim();
        fixture.Device.BeforeWrite = () => hold.Wait(Timeout);
        Task write;
        try
        {
            write = gateway.WriteAsync(volume, 1 << 20, data, fua: false).AsTask();
            await Eventually.Until(() => seen.Count >= 3, Timeout, "the gateway to ask again for the held write");
        }
        finally
        {
            hold.Set();
            fixture.Device.BeforeWrite = null;
        }
        await write.WaitAsync(Timeout);

        // The caller reuses its buffer; the repeats, delivered only now, still carry the bytes it wrote.
        data.AsSpan().Fill(0xee);
        // Every attempt the gateway counted reaches the relay (the last may still be in its mailbox).
        await Eventually.Until(() => seen.Count == counters.RequestsRepeated + 1, Timeout, "every counted attempt at the relay");
        var attempts = seen.ToArray();
        Assert.Single(attempts.Select(a => a.RequestId).Distinct());
        Assert.NotEqual(0, attempts[0].RequestId);
        Assert.All(attempts.Skip(1), a => Assert.Equal(original, a.Data.ToArray()));
        relay.Tell(new Relay.Release());
        await gateway.FlushAsync(volume);

        Assert.Equal(lsnBefore + 1, node.Store.GetVolume(volume)!.Lsn);
        var back = new byte[65536];
        await gateway.ReadAsync(volume, 1 << 20, back);
        Assert.Equal(original, back);
    }
}
