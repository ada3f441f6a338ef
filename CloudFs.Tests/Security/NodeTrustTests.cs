// What `cloudfs node` decides before it starts: without --tls it listens on loopback only unless --insecure; with
// --tls the certificate must be a node's, of this node's host id (the flag's or the device header's), and a fresh
// node takes the certificate's host id.
using System.Net;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;
using CloudFs.Host.Node;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Security;

public sealed class NodeTrustTests : IDisposable
{
    private readonly TestAuthority _ca = new();
    private readonly List<string> _log = [];

    public void Dispose() => _ca.Dispose();

    private (CloudFs.Actors.Security.ClusterTls? Tls, NodeOptions Options) Check(NodeOptions options, string listen)
    {
        var result = NodeTrust.Check(options, options, IPAddress.Parse(listen), _log.Add);
        return result;
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("10.77.3.1")]
    [InlineData("::")]
    public void Without_TLS_a_node_refuses_an_address_other_than_loopback_naming_cert_init(string listen)
    {
        var refused = Assert.Throws<CliException>(() => Check(new NodeOptions { Listen = listen }, listen));
        Assert.Contains("cloudfs cert init", refused.Message);
        Assert.Contains("--insecure", refused.Message);
        Assert.Single(refused.Message.Split(". ")); // one sentence
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.4.9")]
    [InlineData("::1")]
    public void Without_TLS_loopback_needs_no_set_up(string listen)
    {
        var (tls, options) = Check(new NodeOptions { Listen = listen }, listen);
        Assert.Null(tls);
        Assert.Null(options.HostId);
    }

    [Fact]
    public void Insecure_allows_another_address_without_TLS()
    {
        var (tls, _) = Check(new NodeOptions { Listen = "10.77.3.1", Insecure = true }, "10.77.3.1");
        Assert.Null(tls);
    }

    [Fact]
    public void With_TLS_a_fresh_node_takes_its_certificates_host_id_and_may_listen_anywhere()
    {
        var host = Id160.Random();
        var dir = _ca.Node("node", host, "10.77.3.1");
        using var device = new TempLog();

        var (tls, options) = Check(new NodeOptions { Listen = "10.77.3.1", TlsDirectory = dir, DevicePath = device.Path }, "10.77.3.1");
        using var _ = tls;
        Assert.Equal(host, tls!.HostId);
        Assert.Equal(host, options.HostId);
        Assert.Empty(_log);
    }

    [Fact]
    public void With_TLS_a_certificate_for_another_host_than_the_device_header_is_refused()
    {
        using var device = new TempLog();
        var formatted = Id160.Random();
        device.Open(host: formatted).Dispose();
        var dir = _ca.Node("node", Id160.Random(), "127.0.4.2");

        var refused = Assert.Throws<CliException>(() => Check(new NodeOptions { Listen = "127.0.4.2", TlsDirectory = dir, DevicePath = device.Path }, "127.0.4.2"));
        Assert.Contains($"this node is host {formatted} (the device {device.Path} says so)", refused.Message);
        Assert.Contains($"--host-id {formatted}", refused.Message);
    }

    [Fact]
    public void With_TLS_a_certificate_for_another_host_than_host_id_or_an_operators_is_refused()
    {
        var dir = _ca.Node("node", Id160.Random(), "127.0.4.2");
        var flag = Id160.Random();
        var other = Assert.Throws<CliException>(() => Check(new NodeOptions { Listen = "127.0.4.2", TlsDirectory = dir, HostId = flag, DevicePath = "/nonexistent/log" }, "127.0.4.2"));
        Assert.Contains($"this node is host {flag} (--host-id)", other.Message);

        var admin = _ca.Operator("admin");
        var operatorCert = Assert.Throws<CliException>(() => Check(new NodeOptions { Listen = "127.0.4.2", TlsDirectory = admin }, "127.0.4.2"));
        Assert.Contains("operator admin's, not a node's", operatorCert.Message);
        var missing = Assert.Throws<CliException>(() => Check(new NodeOptions { TlsDirectory = Path.Combine(_ca.Root, "nowhere") }, "127.0.0.1"));
        Assert.Contains("does not exist", missing.Message);
    }

    [Fact]
    public void With_TLS_a_certificate_that_does_not_name_the_listen_address_is_used_with_a_warning()
    {
        var host = Id160.Random();
        var (tls, _) = Check(new NodeOptions { Listen = "127.0.4.3", TlsDirectory = _ca.Node("node", host, "127.0.4.4"), DevicePath = "/nonexistent/log" }, "127.0.4.3");
        using var _ = tls;
        Assert.Equal(host, tls!.HostId);
        Assert.Contains(_log, l => l.Contains("does not name 127.0.4.3"));
    }
}
