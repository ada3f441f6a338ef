// The feed port of nodes with --tls, spoken to by hand as an attacker would: only a node certificate of the cluster
// whose host id is the hello's gets a volume's entries and has its acknowledgements counted. A plain connection, one
// without a certificate, an operator's certificate, and another host's certificate saying a replica's hello are all
// refused, and a FUA write on a sync volume whose real replicas are stopped waits for a replica that proves who it is.
// A replica follows only a feed port that proves to be its primary's host. Replication over TLS works as without.
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;
using CloudFs.Tests.Engine;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class FeedPortTlsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<FeedEndpoint> EndpointAsync(CloudFsNode node) =>
        await node.System.ActorSelection(HostAgent.Path).Ask<FeedEndpoint>(WhereIsFeed.Instance, Timeout);

    private static async Task<Stream> PlainAsync(FeedEndpoint endpoint)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint.Host, endpoint.Port);
        return new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>A TLS connection presenting <paramref name="certificates"/>' client certificate (none when null); it trusts any server.</summary>
    private static async Task<Stream> TlsAsync(FeedEndpoint endpoint, string? certificates)
    {
        var tls = new SslStream(await PlainAsync(endpoint));
        using var own = certificates is null ? null : ClusterTls.Load(certificates);
        var options = own?.ClientOptions(endpoint.Host) ?? new SslClientAuthenticationOptions { TargetHost = endpoint.Host };
        options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        using var wait = new CancellationTokenSource(Timeout);
        await tls.AuthenticateAsClientAsync(options, wait.Token);
        return tls;
    }

    private sealed record Forgery(bool Fed, string What);

    /// <summary>
    /// The whole attack: opens a connection (<paramref name="open"/>), says the hello of <paramref name="claimed"/>,
    /// reads entries until <paramref name="until"/> and acknowledges them durably. Fed: it got entries (and acknowledged
    /// them); otherwise What says how it was refused (an end frame's reason, or the connection's error).
    /// </summary>
    private static async Task<Forgery> ForgeAsync(Func<Task<Stream>> open, Id160 volume, Id160 claimed, long until)
    {
        try
        {
            await using var feed = await open();
            await feed.WriteAsync(FeedWire.EncodeHello(new FeedWire.Hello(volume, claimed, 0, 64 << 10)));
            await feed.FlushAsync();
            for (long last = 0; last < until;)
            {
                var (kind, body) = await ReadFrameAsync(feed);
                if (kind == FeedWire.End) return new Forgery(false, System.Text.Encoding.UTF8.GetString(body, 1, body.Length - 1));
                if (kind == FeedWire.Chunk) last = BinaryPrimitives.ReadInt64LittleEndian(body);
            }
            var ack = new byte[FeedWire.AckSize];
            FeedWire.EncodeLsnPair(ack, FeedWire.Ack, until, until);
            await feed.WriteAsync(ack);
            await feed.FlushAsync();
            return new Forgery(true, "fed, and acknowledged");
        }
        catch (Exception e) when (e is IOException or AuthenticationException)
        {
            return new Forgery(false, e.Message);
        }
    }

    private static async Task<(byte Kind, byte[] Body)> ReadFrameAsync(Stream s)
    {
        using var wait = new CancellationTokenSource(Timeout);
        var header = new byte[FeedWire.FrameHeaderSize];
        await s.ReadExactlyAsync(header, wait.Token);
        var body = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(1))];
        await s.ReadExactlyAsync(body, wait.Token);
        return (header[0], body);
    }

    /// <summary>A sync volume on <paramref name="replicas"/> hosts; asked again while placement has not heard from every host yet (a loaded start).</summary>
    private static async Task<Id160> CreateAsync(TestCluster cluster, int replicas) =>
        Id160.Parse((await cluster.CreateVolumeAsync(replicas, 16 << 20, VolumeMode.Sync)).VolumeId);

    /// <summary>
    /// A sync volume of <paramref name="replicas"/> on TLS nodes, written once, with every replica but the primary
    /// stopped, and a FUA write placed in the primary's log that only a replica's durable acknowledgement completes.
    /// </summary>
    private static async Task<(Id160 Volume, CloudFsNode Primary, (int Index, Id160 Host)[] Stopped, FeedEndpoint Endpoint, long Lsn, Task Fua)> FuaWaitingAsync(TestCluster cluster, int replicas)
    {
        var volume = await CreateAsync(cluster, replicas);
        var primary = cluster.Live.Single(n => n.Store.IsWritable(volume));
        await primary.Gateway.WriteAsync(volume, 0, TempLog.Pattern(4096, 1), fua: true);
        var stopped = cluster.Live.Where(n => n != primary).Select(n => (cluster.IndexOf(n.HostId.ToString()), n.HostId)).ToArray();
        foreach (var (i, _) in stopped) await cluster.CrashAsync(i);
        var lsn = primary.Store.GetVolume(volume)!.Lsn + 1;
        var fua = primary.Gateway.WriteAsync(volume, 4096, TempLog.Pattern(4096, 2), fua: true).AsTask();
        await Eventually.Until(() => primary.Store.Streams.PlacedLsn(volume) >= lsn, Timeout, "the FUA write placed in the primary's log");
        return (volume, primary, stopped, await EndpointAsync(primary), lsn, fua);
    }

    [Fact]
    public async Task A_plain_connection_or_one_without_a_certificate_gets_no_entry_from_a_tls_feed_port_and_a_fua_write_waits_for_a_certified_replica()
    {
        using var ca = new TestAuthority();
        await using var cluster = await TestCluster.StartAsync(2, "", ca, "127.0.7.1");
        var (volume, _, stopped, endpoint, lsn, fua) = await FuaWaitingAsync(cluster, 2);
        var (replica, replicaHost) = stopped.Single();

        // Speaking for the stopped replica: in the clear, or over TLS with no certificate.
        var plain = await ForgeAsync(() => PlainAsync(endpoint), volume, replicaHost, lsn);
        Assert.False(plain.Fed, "a plain connection was fed by a TLS feed port");
        var anonymous = await ForgeAsync(() => TlsAsync(endpoint, null), volume, replicaHost, lsn);
        Assert.False(anonymous.Fed, "a connection without a certificate was fed");
        Assert.False(fua.IsCompleted, "a FUA write completed with no replica holding it");

        // The replica's own certificate says its hello: it is fed, and its acknowledgement completes the write.
        var certified = await ForgeAsync(() => TlsAsync(endpoint, cluster.CertificateDirectory(replica)), volume, replicaHost, lsn);
        Assert.True(certified.Fed, certified.What);
        await fua.WaitAsync(Timeout);
    }

    [Fact]
    public async Task Another_hosts_or_an_operators_certificate_cannot_say_a_replicas_hello_and_a_fua_write_waits_while_both_replicas_are_stopped()
    {
        using var ca = new TestAuthority();
        await using var cluster = await TestCluster.StartAsync(3, "", ca, "127.0.7.11");
        var (volume, _, stopped, endpoint, lsn, fua) = await FuaWaitingAsync(cluster, 3);
        var replicaHosts = stopped.Select(s => s.Host).ToArray();
        // A valid node certificate of the cluster, for a host outside the volume's replica set.
        var third = Id160.Random();
        var thirdCertificate = ca.Node("third", third, "127.0.7.11");

        var posing = await ForgeAsync(() => TlsAsync(endpoint, thirdCertificate), volume, replicaHosts[0], lsn);
        Assert.False(posing.Fed, "another host's certificate was fed as a replica");
        Assert.Contains($"its hello says host {replicaHosts[0]}, but its certificate is host {third}'s", posing.What);

        var itself = await ForgeAsync(() => TlsAsync(endpoint, thirdCertificate), volume, third, lsn);
        Assert.False(itself.Fed, "a host outside the replica set was fed");
        Assert.Contains($"host {third} is not in the replica set", itself.What);

        var admin = await ForgeAsync(() => TlsAsync(endpoint, ca.Operator("admin")), volume, replicaHosts[1], lsn);
        Assert.False(admin.Fed, "an operator's certificate was fed as a replica");
        Assert.Contains("operator admin's certificate, not a node's", admin.What);

        var anonymous = await ForgeAsync(() => TlsAsync(endpoint, null), volume, replicaHosts[1], lsn);
        Assert.False(anonymous.Fed, "a connection without a certificate was fed");
        Assert.False(fua.IsCompleted, "a FUA write completed with both replicas stopped");

        // One replica proving who it is makes the majority (two of three).
        var certified = await ForgeAsync(() => TlsAsync(endpoint, cluster.CertificateDirectory(stopped[1].Index)), volume, replicaHosts[1], lsn);
        Assert.True(certified.Fed, certified.What);
        await fua.WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_three_replica_sync_volume_on_tls_nodes_replicates_and_acknowledges_and_no_feed_port_feeds_a_plain_connection()
    {
        using var ca = new TestAuthority();
        await using var cluster = await TestCluster.StartAsync(3, "", ca, "127.0.7.21");
        var volume = await CreateAsync(cluster, 3);
        var primary = cluster.Live.Single(n => n.Store.IsWritable(volume));
        const int small = 64 * 4096;
        var data = new byte[small + (2 << 20)];
        Random.Shared.NextBytes(data);
        // Small writes (chunks of many entries) and 1 MiB ones (a chunk each, larger than a TLS record by far).
        for (var i = 0; i < 64; i++) await primary.Gateway.WriteAsync(volume, i * 4096L, data.AsMemory(i * 4096, 4096), fua: i % 16 == 15);
        for (var off = small; off < data.Length; off += 1 << 20) await primary.Gateway.WriteAsync(volume, off, data.AsMemory(off, 1 << 20), fua: false);
        await primary.Gateway.FlushAsync(volume);
        var head = primary.Store.GetVolume(volume)!.Lsn;

        foreach (var replica in cluster.Live.Where(n => n != primary))
        {
            await Eventually.Until(() => replica.Store.GetVolume(volume)?.Lsn >= head, Timeout, $"host {replica.HostId} holds the writes");
            var back = new byte[data.Length];
            await replica.Store.ReadAsync(volume, 0, back);
            Assert.True(data.AsSpan().SequenceEqual(back), $"host {replica.HostId} holds other data");
        }
        foreach (var node in cluster.Live)
        {
            var other = cluster.Live.First(n => n != node).HostId;
            var plain = await ForgeAsync(async () => await PlainAsync(await EndpointAsync(node)), volume, other, 1);
            Assert.False(plain.Fed, $"host {node.HostId}'s feed port fed a plain connection");
        }
    }

    [Fact]
    public async Task A_replica_connects_only_to_a_feed_port_that_proves_to_be_its_primarys_host()
    {
        using var ca = new TestAuthority();
        var (primary, impostor) = (Id160.Random(), Id160.Random());
        using var replicaTls = ca.LoadNode("replica", null, "127.0.7.31");
        using var serverTls = ca.LoadNode("server", impostor, "127.0.7.31");
        using var listener = new TcpListener(IPAddress.Parse("127.0.7.31"), 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var served = Task.Run(async () =>
        {
            // As many handshakes as the replica tries; the listener's end stops this loop.
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync();
                await using var tls = new SslStream(client.GetStream());
                try { await tls.AuthenticateAsServerAsync(serverTls.ServerOptions(requireClientCertificate: true)); }
                catch (Exception e) when (e is AuthenticationException or IOException) { }
            }
        });

        var refused = await Assert.ThrowsAsync<CloudFsException>(() => FeedConnection.ConnectAsync("127.0.7.31", port, primary, replicaTls, CancellationToken.None));
        Assert.Contains($"is not host {primary}'s: the server is host {impostor}, not host {primary}", refused.Message);

        // The same server is followed when it is the host the replica expects.
        using var connection = await FeedConnection.ConnectAsync("127.0.7.31", port, impostor, replicaTls, CancellationToken.None);
        Assert.True(connection.IsTls);
        Assert.Equal(impostor, connection.Peer!.HostId);
        listener.Stop();
        await Assert.ThrowsAnyAsync<Exception>(() => served);
    }
}
