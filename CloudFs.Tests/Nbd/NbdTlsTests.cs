// NBD with TLS (the protocol's FORCEDTLS mode) over a raw client: before NBD_OPT_STARTTLS every option but ABORT is
// refused with NBD_REP_ERR_TLS_REQD and OPT_EXPORT_NAME closes; the upgrade needs a client certificate of the
// cluster; afterwards haggling and transmission travel inside TLS. qemu and nbdinfo: EndToEnd/TlsEndToEndTests.
using System.Security.Authentication;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;
using CloudFs.Host.Nbd;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Nbd;

public sealed class NbdTlsTests : IDisposable
{
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(10);

    private readonly TestAuthority _ca = new();
    private readonly ClusterTls _node;
    private readonly ClusterTls _admin;

    public NbdTlsTests()
    {
        _node = _ca.LoadNode("node", null, "127.0.0.1");
        _admin = ClusterTls.Load(_ca.Operator("admin"));
    }

    public void Dispose()
    {
        _admin.Dispose();
        _node.Dispose();
        _ca.Dispose();
    }

    [Fact]
    public async Task Before_STARTTLS_every_option_but_abort_is_refused_with_TLS_REQD()
    {
        await using var nbd = NbdTestServer.Start(tls: _node);
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);

        foreach (var (option, data) in new[]
                 {
                     (NbdProtocol.OptList, Array.Empty<byte>()),
                     (NbdProtocol.OptGo, RawNbdClient.GoData(id.ToString())),
                     (NbdProtocol.OptInfo, RawNbdClient.GoData(id.ToString())),
                     (NbdProtocol.OptStructuredReply, Array.Empty<byte>()),
                     (NbdProtocol.OptSetMetaContext, new byte[8]),
                     (4242u, "whatever"u8.ToArray()),
                 })
        {
            client.SendOption(option, data);
            var reply = client.ReceiveOptionReply();
            Assert.Equal((option, NbdProtocol.RepErrTlsReqd), (reply.Option, reply.Type));
        }
        // Nothing was served in plain text; ABORT is still answered.
        client.SendOption(NbdProtocol.OptAbort, default);
        Assert.Equal(NbdProtocol.RepAck, client.ReceiveOptionReply().Type);
        Assert.True(client.ServerClosed());
    }

    [Fact]
    public async Task OPT_EXPORT_NAME_without_TLS_closes_the_connection()
    {
        await using var nbd = NbdTestServer.Start(tls: _node);
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);

        client.SendOption(NbdProtocol.OptExportName, System.Text.Encoding.ASCII.GetBytes(id.ToString()));

        Assert.True(client.ServerClosed());
        Assert.Contains(nbd.Log, l => l.Contains("OPT_EXPORT_NAME without TLS"));
    }

    [Fact]
    public async Task After_STARTTLS_with_a_cluster_certificate_reads_and_writes_travel_inside_TLS()
    {
        await using var nbd = NbdTestServer.Start(tls: _node);
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);

        client.StartTls(_admin, _admin);
        client.SendOption(NbdProtocol.OptStartTls, default); // once is enough
        Assert.Equal(NbdProtocol.RepErrInvalid, client.ReceiveOptionReply().Type);
        var (size, _) = client.Go(id.ToString());
        Assert.Equal(1024ul * 1024, size);

        var data = Enumerable.Range(0, 64 * 1024).Select(i => (byte)(i * 13)).ToArray();
        client.SendRequest(NbdProtocol.CmdWrite, 1, 4096, (uint)data.Length, flags: NbdProtocol.CmdFlagFua, payload: data);
        Assert.Equal((0u, 1ul), client.ReceiveSimpleReply());
        client.SendRequest(NbdProtocol.CmdRead, 2, 4096, (uint)data.Length);
        Assert.Equal((0u, 2ul), client.ReceiveSimpleReply());
        Assert.Equal(data, client.Receive(data.Length));
        Assert.Equal(data, nbd.Gateway.Peek(id, 4096, data.Length));
    }

    [Fact]
    public async Task A_client_without_a_certificate_or_with_another_clusters_is_refused_at_the_handshake()
    {
        await using var nbd = NbdTestServer.Start(tls: _node);
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var foreignAuthority = new TestAuthority();
        using var foreign = ClusterTls.Load(foreignAuthority.Operator("mallory"));

        using (var anonymous = RawNbdClient.Connect(nbd.Port))
            Assert.ThrowsAny<Exception>(() => { anonymous.StartTls(null, _admin); anonymous.Go(id.ToString()); });
        using (var stranger = RawNbdClient.Connect(nbd.Port))
            Assert.ThrowsAny<Exception>(() => { stranger.StartTls(foreign, _admin); stranger.Go(id.ToString()); });

        await Eventually.Until(() => nbd.Log.Count(l => l.Contains("TLS refused")) == 2, PollTimeout, "both refusals logged");
        Assert.Contains(nbd.Log, l => l.Contains("TLS refused: no certificate was presented"));
        Assert.Contains(nbd.Log, l => l.Contains("TLS refused: the certificate 'CN=cloudfs operator mallory' is not one of this cluster's"));
        Assert.Equal(0, nbd.Gateway.Writes);
    }

    [Fact]
    public async Task A_client_checks_that_the_server_is_a_node_of_its_cluster()
    {
        using var foreignAuthority = new TestAuthority();
        using var impostor = foreignAuthority.LoadNode("impostor", null, "127.0.0.1");
        await using var nbd = NbdTestServer.Start(tls: impostor);
        using var client = RawNbdClient.Connect(nbd.Port);

        Assert.ThrowsAny<AuthenticationException>(() => client.StartTls(_admin, _admin));
    }

    [Fact]
    public async Task A_node_without_TLS_answers_STARTTLS_unsupported_and_serves_in_plain_text()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);

        client.SendOption(NbdProtocol.OptStartTls, default);
        Assert.Equal(NbdProtocol.RepErrUnsup, client.ReceiveOptionReply().Type);
        client.Go(id.ToString());
        client.SendRequest(NbdProtocol.CmdRead, 1, 0, 512);
        Assert.Equal((0u, 1ul), client.ReceiveSimpleReply());
    }
}
