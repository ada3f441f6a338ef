// A real node with --tls, driven by the real clients: curl over HTTPS with and without the operator's certificate,
// qemu-io with tls-creds-x509, nbdinfo and nbdsh (libnbd) with nbds://, the CLI with --tls; plain clients refused;
// a stalled WRITE payload dropped and its bytes given back; nodes that must not start refusing with one sentence.
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;
using CloudFs.Host.Nbd;
using CloudFs.Tests.Nbd;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.EndToEnd;

public sealed class TlsNode : OneNodeWithTls
{
    // A short payload timeout, so that the stalled-payload test waits seconds, not the default 30.
    public TlsNode() : base("127.0.4.1") => Config = "cloudfs.nbd.payload-timeout = 3s\n";
}

public sealed class TlsEndToEndTests(TlsNode fixture) : IClassFixture<TlsNode>
{
    private NodeProcess Node => fixture.Node;
    private string Https => $"https://{fixture.Address}:8090";
    private string Nbds(string volume, string certificates) => $"nbds://{fixture.Address}/{volume}?tls-certificates={certificates}";

    private string[] QemuTls(string volume, string certificates, params string[] commands) =>
    [
        "--object", $"tls-creds-x509,dir={certificates},endpoint=client,id=t",
        "--image-opts", $"driver=nbd,host={fixture.Address},port=10809,export={volume},tls-creds=t",
        .. commands.SelectMany(c => new[] { "-c", c }),
    ];

    /// <summary>nbdsh connected with libnbd's TLS (nbds://, tls-certificates=DIR), then <paramref name="commands"/>.</summary>
    private string[] NbdshTls(string volume, string certificates, params string[] commands) =>
    [
        // A tls-certificates URI parameter reads local files, which libnbd allows only when asked to.
        "-c", "h.set_uri_allow_local_file(True)", "-c", $"h.connect_uri('{Nbds(volume, certificates)}')",
        .. commands.SelectMany(c => new[] { "-c", c }),
    ];

    private string[] Curl(bool withCertificate, params string[] args) =>
        ["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert", fixture.CaCert,
         .. withCertificate ? new[] { "--cert", Path.Combine(fixture.Operator, "client-cert.pem"), "--key", Path.Combine(fixture.Operator, "client-key.pem") } : [],
         .. args];

    [Fact]
    public void The_node_runs_as_its_certificates_host_and_says_it_serves_https()
    {
        Assert.Equal(fixture.HostId.ToString(), Node.HostId);
        Assert.Contains($"https {fixture.Address}:8090", Node.ReadyLine);
        Assert.Contains($"tls {fixture.NodeCertificates}", Node.ReadyLine);
    }

    [Fact]
    public async Task Curl_PUT_without_a_client_certificate_is_refused_and_with_the_operators_writes()
    {
        var volume = await Node.NewDiskAsync("16M");
        var data = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();
        var block = fixture.Dir.File($"block-{volume}");
        File.WriteAllBytes(block, data);
        string[] put = ["-X", "PUT", "-H", "Content-Range: bytes 8192-12287/*", "--data-binary", "@" + block, $"{Https}/volumes/{volume}"];
        string[] get = ["-H", "Range: bytes=8192-12287", $"{Https}/volumes/{volume}"];

        var refused = (await Tool.RunAsync("curl", Curl(false, put))).AssertOk();
        Assert.EndsWith("\n401", refused.Out);
        Assert.Contains("needs a client certificate of this cluster's authority", refused.Out);
        Assert.EndsWith("\n401", (await Tool.RunAsync("curl", Curl(false, get))).Out);

        Assert.EndsWith("\n204", (await Tool.RunAsync("curl", Curl(true, put))).AssertOk().Out);
        var read = fixture.Dir.File($"read-{volume}");
        (await Tool.RunAsync("curl", ["-s", "-f", "-o", read, "--cacert", fixture.CaCert, "--cert", Path.Combine(fixture.Operator, "client-cert.pem"),
            "--key", Path.Combine(fixture.Operator, "client-key.pem"), .. get])).AssertOk();
        Assert.Equal(data, File.ReadAllBytes(read));

        // The read-only views stay open; plain HTTP gets nothing.
        Assert.EndsWith("\n200", (await Tool.RunAsync("curl", Curl(false, $"{Https}/heads"))).Out);
        Assert.NotEqual(0, (await Tool.RunAsync("curl", ["-s", "-f", "--max-time", "20", $"http://{fixture.Address}:8090/heads"])).Code);
    }

    [Fact]
    public async Task Qemu_io_with_tls_creds_x509_writes_and_reads_and_libnbd_reads_the_same_bytes()
    {
        var volume = await Node.NewDiskAsync("64M");

        (await ExternalTool.RunAsync("qemu-io", QemuTls(volume, fixture.Operator, "write -P 0x5a 1M 1M", "flush", "read -P 0x5a 1M 1M"), TimeSpan.FromSeconds(120))).AssertSuccess();
        // The node's own directory works for qemu as it is, too (its client pair).
        (await ExternalTool.RunAsync("qemu-io", QemuTls(volume, fixture.NodeCertificates, "read -P 0x5a 1M 1M", "read -P 0 0 1M"), TimeSpan.FromSeconds(120))).AssertSuccess();
        (await ExternalTool.RunAsync("nbdsh", NbdshTls(volume, fixture.Operator, "assert h.pread(1048576, 1048576) == b'\\x5a' * 1048576"), TimeSpan.FromSeconds(120))).AssertSuccess();
    }

    [Fact]
    public async Task Nbdinfo_and_nbdsh_over_nbds_see_the_export_and_write_what_qemu_reads()
    {
        var volume = await Node.NewDiskAsync("32M");

        var info = (await ExternalTool.RunAsync("nbdinfo", [Nbds(volume, fixture.Operator)], TimeSpan.FromSeconds(60))).AssertSuccess();
        Assert.Contains("with TLS", info.Stdout);
        Assert.Contains($"export-size: {32 << 20}", info.Stdout);
        var list = (await ExternalTool.RunAsync("nbdinfo", ["--list", $"nbds://{fixture.Address}?tls-certificates={fixture.Operator}"], TimeSpan.FromSeconds(60))).AssertSuccess();
        Assert.Contains(volume, list.Stdout);

        (await ExternalTool.RunAsync("nbdsh", NbdshTls(volume, fixture.Operator, "h.pwrite(b'\\xc3' * 65536, 4194304)", "h.flush()"), TimeSpan.FromSeconds(60))).AssertSuccess();
        (await ExternalTool.RunAsync("qemu-io", QemuTls(volume, fixture.Operator, "read -P 0xc3 4M 64k"), TimeSpan.FromSeconds(120))).AssertSuccess();
    }

    [Fact]
    public async Task Plain_NBD_clients_are_refused_and_a_client_without_a_certificate_cannot_start_TLS()
    {
        var volume = await Node.NewDiskAsync("16M");

        var qemu = await ExternalTool.RunAsync("qemu-io", ["-f", "raw", "-c", "read 0 4k", $"nbd://{fixture.Address}:10809/{volume}"], TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, qemu.ExitCode);
        Assert.Contains("TLS", qemu.Stderr);
        var nbdinfo = await ExternalTool.RunAsync("nbdinfo", [$"nbd://{fixture.Address}/{volume}"], TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, nbdinfo.ExitCode);

        using (var raw = RawNbdClient.Connect(10809, address: System.Net.IPAddress.Parse(fixture.Address)))
        {
            raw.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData(volume));
            Assert.Equal(NbdProtocol.RepErrTlsReqd, raw.ReceiveOptionReply().Type);
        }

        // With only the authority's certificate (no client certificate of its own) libnbd's handshake is refused.
        var anonymous = Directory.CreateDirectory(fixture.Dir.File("anonymous")).FullName;
        File.Copy(fixture.CaCert, Path.Combine(anonymous, "ca-cert.pem"), overwrite: true);
        var refused = await ExternalTool.RunAsync("nbdinfo", [Nbds(volume, anonymous)], TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("TLS refused: no certificate was presented", Node.Stderr);
    }

    [Fact]
    public async Task The_CLI_streams_a_volume_with_its_certificate_and_says_what_to_do_without()
    {
        var volume = await Node.NewDiskAsync("16M");
        (await ExternalTool.RunAsync("qemu-io", QemuTls(volume, fixture.Operator, "write -P 0x11 0 64k"), TimeSpan.FromSeconds(120))).AssertSuccess();

        var heads = (await Tool.CloudFs("heads", "--http", fixture.Address, "--tls", fixture.Operator)).AssertOk();
        Assert.Contains(volume + ":", heads.Out);
        var stream = (await Tool.Bash($"./cloudfs stream {volume} --http {fixture.Address} --tls '{fixture.Operator}' | wc -c")).AssertOk();
        Assert.True(long.Parse(stream.Out.Trim()) > 64 << 10, $"the stream carries the 64 KiB written: {stream.Out}");

        var plain = await Tool.CloudFs("stream", volume, "--http", fixture.Address);
        Assert.Equal(1, plain.Code);
        Assert.Contains("pass --tls DIR", plain.Err);
    }

    [Fact]
    public async Task A_stalled_WRITE_payload_is_dropped_after_the_timeout_and_the_nodes_payload_memory_comes_back()
    {
        var volume = await Node.NewDiskAsync("256M");
        using var operatorTls = ClusterTls.Load(fixture.Operator);
        var clients = new List<RawNbdClient>();
        try
        {
            // Four connections, each with a 32 MiB WRITE whose last 4 KiB never come: 128 MiB held by the node.
            for (ulong i = 0; i < 4; i++)
            {
                var client = RawNbdClient.Connect(10809, address: System.Net.IPAddress.Parse(fixture.Address));
                clients.Add(client);
                client.StartTls(operatorTls, operatorTls);
                client.Go(volume);
                client.SendRequest(NbdProtocol.CmdWrite, i, i * (32 << 20), 32 << 20, payload: new byte[(32 << 20) - 4096]);
            }
            foreach (var client in clients) Assert.True(client.ServerClosed(), "the node kept a connection whose WRITE payload stalled");
        }
        finally
        {
            foreach (var client in clients) client.Dispose();
        }

        var metrics = "";
        await Eventually.Until(async () =>
        {
            metrics = (await Tool.RunAsync("curl", ["-s", "-f", "--cacert", fixture.CaCert, $"{Https}/metrics"])).AssertOk().Out;
            return metrics.Contains("\ncloudfs_nbd_payload_bytes_in_flight 0\n") && metrics.Contains("\ncloudfs_nbd_connections 0\n");
        }, TimeSpan.FromSeconds(60), () => "the node to give the payload bytes back and close the connections:\n" + string.Join('\n', metrics.Split('\n').Where(l => l.StartsWith("cloudfs_nbd"))));
        Assert.Matches(@"\ncloudfs_nbd_payload_timeouts_total [4-9]", metrics);
        Assert.Contains("did not arrive within 3 s", Node.Stderr);
        // Nothing of the unfinished writes reached the volume; the node still serves.
        (await ExternalTool.RunAsync("qemu-io", QemuTls(volume, fixture.Operator, "read -P 0 0 128M"), TimeSpan.FromSeconds(120))).AssertSuccess();
    }
}

/// <summary>Nodes that must not start: no TLS on an address other than loopback, or a certificate for another host.</summary>
public sealed class TlsRefusalEndToEndTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TestAuthority _ca = new();

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task A_node_on_an_address_other_than_loopback_without_TLS_refuses_to_start_naming_cert_init()
    {
        var (code, stderr) = await NodeProcess.StartExpectingFailureAsync("0.0.0.0", _dir.File("any.log"));
        Assert.Equal(1, code);
        Assert.Contains("cloudfs: refusing to listen on 0.0.0.0 without TLS", stderr);
        Assert.Contains("`cloudfs cert init`", stderr);
        Assert.False(File.Exists(_dir.File("any.log")), "the refused node created its device");
    }

    [Fact]
    public async Task A_node_refuses_a_certificate_for_another_host()
    {
        var certified = Id160.Random();
        var own = Id160.Random();
        var (code, stderr) = await NodeProcess.StartExpectingFailureAsync("127.0.4.2", _dir.File("other.log"),
            "--tls", _ca.Node("node", certified, "127.0.4.2"), "--host-id", own.ToString());
        Assert.Equal(1, code);
        Assert.Contains($"is for host {certified}, but this node is host {own} (--host-id)", stderr);
    }
}
