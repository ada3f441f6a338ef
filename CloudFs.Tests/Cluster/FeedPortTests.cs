// The feed port, spoken to by hand: a hello gets the volume's entries as chunk frames, and a replica's
// acknowledgements on the same connection reach the volume's actor; malformed hellos, unknown volumes and malformed
// acknowledgements end that one connection with a reason, and the node goes on serving its volumes and feeds.
using System.Buffers.Binary;
using System.Net.Sockets;
using Akka.Actor;
using CloudFs.Actors.Management;
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
        Id160.Parse(Assert.IsType<VolumeCreated>(await cluster[0].Management.Ask<IManagementMessage>(
            new CreateVolume(replicas, 16 << 20, VolumeMode.Sync), Timeout)).VolumeId);

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
        await using (var forged = await ConnectAsync(endpoint))
        {
            await forged.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, Id160.Random(), 0, 64 << 10)));
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
