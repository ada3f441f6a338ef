// The feed port, spoken to by hand: a hello gets the volume's entries as chunk frames, and a replica's
// acknowledgements on the same connection reach the volume's actor; malformed hellos, unknown volumes, hosts outside
// the replica set and malformed acknowledgements end that one connection with a reason, and the node goes on serving
// its volumes and feeds. An acknowledgement counts only for what its connection carried, and only while it is open.
using System.Buffers.Binary;
using System.Net.Sockets;
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class FeedPortTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<FeedEndpoint> EndpointAsync(TestCluster cluster, int node) =>
        await cluster[node].System.ActorSelection(HostAgent.Path).Ask<FeedEndpoint>(WhereIsFeed.Instance, Timeout);

    private static async Task<NetworkStream> ConnectAsync(FeedEndpoint endpoint)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint.Host, endpoint.Port);
        return new NetworkStream(socket, ownsSocket: true) { ReadTimeout = (int)Timeout.TotalMilliseconds };
    }

    private static async Task<Id160> CreateAsync(TestCluster cluster, int replicas) =>
        Id160.Parse((await cluster.CreateVolumeAsync(replicas, 16 << 20, VolumeMode.Sync)).VolumeId);

    /// <summary>A sync volume on both nodes, written once durably, with its replica's node stopped: its feed port is free to speak for it.</summary>
    private static async Task<(Id160 Volume, CloudFsNode Primary, CloudFsNode Replica, FeedEndpoint Endpoint, long Head)> ReplicaStoppedAsync(TestCluster cluster)
    {
        var volume = await CreateAsync(cluster, 2);
        var primary = cluster.Live.Single(n => n.Store.IsWritable(volume));
        var replica = cluster.Live.Single(n => n != primary);
        await primary.Gateway.WriteAsync(volume, 0, TempLog.Pattern(4096, 1), fua: true);
        await cluster.CrashAsync(cluster.IndexOf(replica.HostId.ToString()));
        var endpoint = await EndpointAsync(cluster, cluster.IndexOf(primary.HostId.ToString()));
        return (volume, primary, replica, endpoint, primary.Store.GetVolume(volume)!.Lsn);
    }

    /// <summary>The next frame from the primary: its kind and body.</summary>
    private static async Task<(byte Kind, byte[] Body)> ReadFrameAsync(Stream s)
    {
        using var wait = new CancellationTokenSource(Timeout);
        var header = new byte[FeedWire.FrameHeaderSize];
        await s.ReadExactlyAsync(header, wait.Token);
        var body = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(1))];
        await s.ReadExactlyAsync(body, wait.Token);
        return (header[0], body);
    }

    /// <summary>True when the peer closes the connection (after any frames it sent first) within the timeout.</summary>
    private static async Task<bool> ClosedAsync(Stream s)
    {
        using var wait = new CancellationTokenSource(Timeout);
        var buffer = new byte[4096];
        try
        {
            while (await s.ReadAsync(buffer, wait.Token) > 0) { }
            return true;
        }
        catch (IOException) { return true; }   // reset
    }

    /// <summary>Reads chunk frames (skipping keepalives) until one ends at <paramref name="lsn"/>; fails on any other frame.</summary>
    private static async Task<long> ReadChunksUntilAsync(Stream feed, long lsn)
    {
        long last = 0, bytes = 0;
        while (last < lsn)
        {
            var (kind, body) = await ReadFrameAsync(feed);
            Assert.Equal(FeedWire.Chunk, kind);
            last = BinaryPrimitives.ReadInt64LittleEndian(body);
            Assert.True(BinaryPrimitives.ReadInt64LittleEndian(body.AsSpan(8)) >= last, "a chunk's head lsn is below its last lsn");
            bytes += body.Length - FeedWire.ChunkPrefixSize;
        }
        Assert.Equal(lsn, last);
        return bytes;
    }

    [Fact]
    public async Task A_hello_gets_the_volumes_entries_and_the_acknowledgements_sent_back_complete_sync_writes()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var volume = await CreateAsync(cluster, 2);
        var primary = cluster.Live.Single(n => n.Store.IsWritable(volume));
        var replica = cluster.Live.Single(n => n != primary);
        for (var i = 0; i < 3; i++) await primary.Gateway.WriteAsync(volume, i * 4096L, TempLog.Pattern(4096, i + 1), fua: false);
        // The real replica is gone: a sync write (a majority of two is both) now completes only when this connection,
        // speaking for the replica's host, acknowledges it.
        await cluster.CrashAsync(cluster.IndexOf(replica.HostId.ToString()));
        await using var feed = await ConnectAsync(await EndpointAsync(cluster, cluster.IndexOf(primary.HostId.ToString())));
        await feed.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, replica.HostId, 0, 64 << 10)));
        var head = primary.Store.GetVolume(volume)!.Lsn;
        Assert.True(await ReadChunksUntilAsync(feed, head) > 3 * 4096, "the creation entry and three 4 KiB writes");

        var ack = new byte[FeedWire.AckSize];
        var write = primary.Gateway.WriteAsync(volume, 0, TempLog.Pattern(4096, 10), fua: false).AsTask();
        await ReadChunksUntilAsync(feed, head + 1);
        Assert.False(write.IsCompleted, "a sync write completed with no replica holding it");
        FeedWire.EncodeLsnPair(ack, FeedWire.Ack, head + 1, head);
        await feed.WriteAsync(ack);
        await write.WaitAsync(Timeout);

        // A FUA write waits for a durable majority: the primary asks the replica to flush, on the same connection.
        var fua = primary.Gateway.WriteAsync(volume, 4096, TempLog.Pattern(4096, 11), fua: true).AsTask();
        await ReadChunksUntilAsync(feed, head + 2);
        FeedWire.EncodeLsnPair(ack, FeedWire.Ack, head + 2, head);
        await feed.WriteAsync(ack);
        var (kind, body) = await ReadFrameAsync(feed);
        while (kind == FeedWire.Chunk && body.Length == FeedWire.ChunkPrefixSize) (kind, body) = await ReadFrameAsync(feed);   // keepalives
        Assert.Equal(FeedWire.Flush, kind);
        Assert.Equal(head + 2, BinaryPrimitives.ReadInt64LittleEndian(body));
        Assert.False(fua.IsCompleted, "a FUA write completed before a majority held it durably");
        FeedWire.EncodeLsnPair(ack, FeedWire.Ack, head + 2, head + 2);
        await feed.WriteAsync(ack);
        await fua.WaitAsync(Timeout);
    }

    [Fact]
    public async Task Malformed_hellos_unknown_volumes_and_malformed_acknowledgements_end_only_their_connection()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var volume = await CreateAsync(cluster, 2);
        var primary = cluster.Live.Single(n => n.Store.IsWritable(volume));
        var p = cluster.IndexOf(primary.HostId.ToString());
        var endpoint = await EndpointAsync(cluster, p);

        // Not a feed request: closed without a frame.
        await using (var garbage = await ConnectAsync(endpoint))
        {
            await garbage.WriteAsync(System.Text.Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n".PadRight(FeedWire.HelloSize)));
            Assert.True(await ClosedAsync(garbage));
        }

        // A volume this host does not hold: an end frame that says so, then the connection closes.
        await using (var unknown = await ConnectAsync(endpoint))
        {
            await unknown.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(Id160.Random(), Id160.Random(), 0, 64 << 10)));
            var (kind, body) = await ReadFrameAsync(unknown);
            Assert.Equal(FeedWire.End, kind);
            Assert.Contains("is not held by this node", System.Text.Encoding.UTF8.GetString(body, 1, body.Length - 1));
            Assert.True(await ClosedAsync(unknown));
        }

        // A well-formed hello, then an acknowledgement of a kind that does not exist: that feed ends.
        var replicaHost = cluster.Live.Single(n => n != primary).HostId;
        await using (var forged = await ConnectAsync(endpoint))
        {
            await forged.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, replicaHost, 0, 64 << 10)));
            var (kind, _) = await ReadFrameAsync(forged);
            Assert.Equal(FeedWire.Chunk, kind);
            var bad = new byte[FeedWire.AckSize];
            FeedWire.EncodeLsnPair(bad, 9, 1, 1);
            await forged.WriteAsync(bad);
            Assert.True(await ClosedAsync(forged));
        }

        // The node and the real feed go on: a sync write (a majority: the primary and its one replica) still completes
        // and the replica holds it.
        var data = new byte[8192];
        Random.Shared.NextBytes(data);
        await primary.Gateway.WriteAsync(volume, 1 << 20, data, fua: true);
        var head = primary.Store.GetVolume(volume)!.Lsn;
        var replica = cluster.Live.Single(n => n != primary);
        await Eventually.Until(() => replica.Store.GetVolume(volume)?.Lsn >= head, Timeout, "the replica holds the write");
        var back = new byte[data.Length];
        await replica.Store.ReadAsync(volume, 1 << 20, back);
        Assert.Equal(data, back);
    }

    /// <summary>The reason of the end frame the primary sends before it closes the connection.</summary>
    private static async Task<string> RefusalAsync(Stream feed)
    {
        var (kind, body) = await ReadFrameAsync(feed);
        Assert.Equal(FeedWire.End, kind);
        Assert.True(await ClosedAsync(feed));
        return System.Text.Encoding.UTF8.GetString(body, 1, body.Length - 1);
    }

    /// <summary>Reads frames until a flush request, which it returns the lsn of; fails on an end frame.</summary>
    private static async Task<long> FlushRequestAsync(Stream feed)
    {
        while (true)
        {
            var (kind, body) = await ReadFrameAsync(feed);
            Assert.NotEqual(FeedWire.End, kind);
            if (kind == FeedWire.Flush) return BinaryPrimitives.ReadInt64LittleEndian(body);
        }
    }

    private static async Task AckAsync(Stream feed, long written, long durable)
    {
        var ack = new byte[FeedWire.AckSize];
        FeedWire.EncodeLsnPair(ack, FeedWire.Ack, written, durable);
        await feed.WriteAsync(ack);
    }

    [Fact]
    public async Task A_hello_for_a_host_outside_the_replica_set_or_for_the_primary_itself_is_refused_with_the_reason()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var volume = await CreateAsync(cluster, 2);
        var primary = cluster.Live.Single(n => n.Store.IsWritable(volume));
        var outsider = cluster.Live.Single(n => !primary.Store.GetVolume(volume)!.Replicas.Contains(n.HostId));
        var endpoint = await EndpointAsync(cluster, cluster.IndexOf(primary.HostId.ToString()));

        await using (var stranger = await ConnectAsync(endpoint))
        {
            await stranger.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, outsider.HostId, 0, 64 << 10)));
            Assert.Contains($"host {outsider.HostId} is not in the replica set of volume {volume}", await RefusalAsync(stranger));
        }
        await using (var itself = await ConnectAsync(endpoint))
        {
            await itself.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, primary.HostId, 0, 64 << 10)));
            Assert.Contains("is this host", await RefusalAsync(itself));
        }
        // A replica that claims to hold more than the primary has would be able to acknowledge what it was never sent.
        var replica = cluster.Live.Single(n => n != primary && n != outsider);
        await using (var ahead = await ConnectAsync(endpoint))
        {
            await ahead.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, replica.HostId, long.MaxValue, 64 << 10)));
            Assert.Contains("beyond lsn", await RefusalAsync(ahead));
        }
    }

    [Fact]
    public async Task A_fake_replica_that_acknowledges_more_than_it_was_sent_is_cut_off_and_a_fua_write_waits_for_a_real_acknowledgement()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var (volume, primary, replica, endpoint, head) = await ReplicaStoppedAsync(cluster);

        // Speaking for the stopped replica, it claims to hold everything there will ever be.
        await using (var fake = await ConnectAsync(endpoint))
        {
            await fake.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, replica.HostId, 0, 64 << 10)));
            await ReadChunksUntilAsync(fake, head);
            await AckAsync(fake, long.MaxValue, long.MaxValue);
            Assert.True(await ClosedAsync(fake), "the primary kept a feed that acknowledged entries it never sent");
        }

        // A FUA write now needs the replica's host to hold it durably: the primary asks for that on the next feed, and
        // the write waits until that feed acknowledges it.
        await using var feed = await ConnectAsync(endpoint);
        await feed.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, replica.HostId, head, 64 << 10)));
        await ReadFrameAsync(feed);   // a keepalive: the feed is up
        var fua = primary.Gateway.WriteAsync(volume, 4096, TempLog.Pattern(4096, 2), fua: true).AsTask();
        Assert.Equal(head + 1, await FlushRequestAsync(feed));
        Assert.False(fua.IsCompleted, "a FUA write completed with only a forged acknowledgement behind it");
        await AckAsync(feed, head + 1, head + 1);
        await fua.WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_replicas_acknowledgements_stop_counting_when_its_feed_connection_ends()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var (volume, primary, replica, endpoint, head) = await ReplicaStoppedAsync(cluster);

        // A connection that holds everything durably: a flush completes on its word.
        await using (var first = await ConnectAsync(endpoint))
        {
            await first.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, replica.HostId, 0, 64 << 10)));
            await ReadChunksUntilAsync(first, head);
            await AckAsync(first, head, head);
            var flush = primary.Gateway.FlushAsync(volume).AsTask();
            await flush.WaitAsync(Timeout);
            // It hangs up (and the primary closes its side once its feeder stopped).
            first.Socket.Shutdown(SocketShutdown.Send);
            Assert.True(await ClosedAsync(first));
        }

        // The host's word went with its connection: the next flush waits for the next connection to say it again.
        await using var second = await ConnectAsync(endpoint);
        await second.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, replica.HostId, head, 64 << 10)));
        await ReadFrameAsync(second);   // a keepalive: the feed is up
        var again = primary.Gateway.FlushAsync(volume).AsTask();
        Assert.Equal(head, await FlushRequestAsync(second));
        Assert.False(again.IsCompleted, "a flush completed on the word of a connection that had ended");
        await AckAsync(second, head, head);
        await again.WaitAsync(Timeout);
    }

    [Fact]
    public void A_hello_that_is_not_one_or_starts_below_lsn_0_is_refused()
    {
        var hello = FeedWire.EncodeHello(new FeedWire.Hello(Id160.Random(), Id160.Random(), 7, 1 << 20));
        var decoded = FeedWire.DecodeHello(hello);
        Assert.Equal((7L, 1 << 20), (decoded.AfterLsn, decoded.MaxBytes));

        var wrongMagic = (byte[])hello.Clone();
        wrongMagic[0] ^= 1;
        Assert.Throws<FeedProtocolException>(() => FeedWire.DecodeHello(wrongMagic));
        Assert.Throws<FeedProtocolException>(() => FeedWire.DecodeHello(hello.AsSpan(1)));
        var negative = FeedWire.EncodeHello(new FeedWire.Hello(Id160.Random(), Id160.Random(), -1, 1 << 20));
        Assert.Throws<FeedProtocolException>(() => FeedWire.DecodeHello(negative));
    }
}
