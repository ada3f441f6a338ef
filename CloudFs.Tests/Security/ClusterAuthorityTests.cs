// The cluster authority and the certificate directories it writes: a node certificate carries its host id and
// addresses and chains to its authority only; operator certificates name no host; nothing is ever overwritten.
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Security;

public sealed class ClusterAuthorityTests : IDisposable
{
    private readonly TestAuthority _ca = new();

    public void Dispose() => _ca.Dispose();

    [Fact]
    public void A_node_certificate_validates_against_its_authority_and_carries_its_host_id_and_addresses()
    {
        var host = Id160.Random();
        using var tls = _ca.LoadNode("node", host, "127.0.4.1", "10.1.2.3", "node1.example");

        Assert.Equal(host, tls.HostId);
        Assert.Equal([IPAddress.Parse("127.0.4.1"), IPAddress.Parse("10.1.2.3")], tls.Identity.Addresses);
        Assert.Equal(["node1.example"], tls.Identity.DnsNames);
        Assert.True(tls.Identity.Names("10.1.2.3") && tls.Identity.Names("NODE1.example") && !tls.Identity.Names("10.1.2.4"));
        // A node's certificate serves both ends of a connection.
        Assert.Equal(host, tls.Validate(tls.Certificate, TlsPeerRole.Server).HostId);
        Assert.Equal(host, tls.Validate(tls.ClientCertificate, TlsPeerRole.Client).HostId);
        // Another node of the same cluster accepts it, and reads the same host id out of it.
        using var other = _ca.LoadNode("other");
        Assert.Equal(host, other.Validate(tls.Certificate, TlsPeerRole.Client).HostId);
        Assert.Equal($"urn:cloudfs:host:{host}", ClusterCertificate.HostUriPrefix + host);
    }

    [Fact]
    public void A_certificate_from_another_authority_is_refused_even_when_it_claims_the_same_host_id()
    {
        var host = Id160.Random();
        using var ours = _ca.LoadNode("ours", host);
        using var foreignAuthority = new TestAuthority();
        using var foreign = foreignAuthority.LoadNode("theirs", host);

        Assert.False(ours.TryValidate(foreign.Certificate, TlsPeerRole.Client, out var identity, out var reason));
        Assert.Null(identity);
        Assert.Contains("not one of this cluster's", reason);
        var refused = Assert.Throws<CertificateException>(() => ours.Validate(foreign.Certificate, TlsPeerRole.Server));
        Assert.Contains(foreign.Certificate.Issuer, refused.Message);
        // The authority itself is no party of the cluster, and presenting nothing is refused too.
        Assert.False(ours.TryValidate(ours.Authority, TlsPeerRole.Client, out _, out _));
        Assert.False(ours.TryValidate(null, TlsPeerRole.Client, out _, out reason));
        Assert.Equal("no certificate was presented", reason);
    }

    [Fact]
    public void An_operator_certificate_names_no_host_and_is_accepted_as_a_client_but_not_as_a_node()
    {
        using var admin = ClusterTls.Load(_ca.Operator("admin"));
        using var node = _ca.LoadNode("node");

        Assert.Null(admin.HostId);
        Assert.Equal("admin", admin.Identity.OperatorName);
        Assert.Equal(["ca-cert.pem", "client-cert.pem", "client-key.pem"], Directory.GetFiles(admin.Directory).Select(Path.GetFileName).Order());
        var seen = node.Validate(admin.ClientCertificate, TlsPeerRole.Client);
        Assert.True(seen.IsOperator && !seen.IsNode);
        Assert.False(node.TryValidateServer(admin.Certificate, null, out var reason));
        Assert.Contains("not a node's", reason);
        Assert.Throws<CertificateException>(() => _ca.Authority.IssueOperator("no spaces"));
    }

    [Fact]
    public void A_node_directory_holds_the_files_qemu_and_libnbd_read_with_the_keys_private()
    {
        var dir = _ca.Node("node", null, "127.0.0.1");

        Assert.Equal(["ca-cert.pem", "client-cert.pem", "client-key.pem", "server-cert.pem", "server-key.pem"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "server-cert.pem")), File.ReadAllText(Path.Combine(dir, "client-cert.pem")));
        Assert.Equal(File.ReadAllText(Path.Combine(_ca.AuthorityDirectory, "ca-cert.pem")), File.ReadAllText(Path.Combine(dir, "ca-cert.pem")));
        foreach (var key in new[] { Path.Combine(dir, "server-key.pem"), Path.Combine(dir, "client-key.pem"), Path.Combine(_ca.AuthorityDirectory, "ca-key.pem") })
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(Path.Combine(dir, "server-key.pem")));
    }

    [Fact]
    public void An_existing_authority_or_certificate_directory_is_never_overwritten()
    {
        var caKey = File.ReadAllText(Path.Combine(_ca.AuthorityDirectory, "ca-key.pem"));
        var again = Assert.Throws<CertificateException>(() => ClusterAuthority.Create(_ca.AuthorityDirectory));
        Assert.Contains("already holds a cluster authority", again.Message);
        Assert.Equal(caKey, File.ReadAllText(Path.Combine(_ca.AuthorityDirectory, "ca-key.pem")));

        var dir = _ca.Node("node");
        var key = File.ReadAllText(Path.Combine(dir, "server-key.pem"));
        var twice = Assert.Throws<CertificateException>(() => _ca.Node("node"));
        Assert.Contains("never overwritten", twice.Message);
        Assert.Equal(key, File.ReadAllText(Path.Combine(dir, "server-key.pem")));
    }

    [Fact]
    public void Loading_a_directory_that_is_not_a_certificate_directory_says_what_is_missing()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_ca.Root, "empty")).FullName;
        Assert.Contains("ca-cert.pem", Assert.Throws<CertificateException>(() => ClusterTls.Load(empty)).Message);
        File.Copy(Path.Combine(_ca.AuthorityDirectory, "ca-cert.pem"), Path.Combine(empty, "ca-cert.pem"));
        Assert.Contains("cloudfs cert issue", Assert.Throws<CertificateException>(() => ClusterTls.Load(empty)).Message);
        Assert.Contains("does not exist", Assert.Throws<CertificateException>(() => ClusterTls.Load(Path.Combine(_ca.Root, "nowhere"))).Message);

        // A node certificate next to another cluster's ca-cert.pem does not load.
        var mixed = _ca.Node("mixed");
        using var foreign = new TestAuthority();
        File.Copy(Path.Combine(foreign.AuthorityDirectory, "ca-cert.pem"), Path.Combine(mixed, "ca-cert.pem"), overwrite: true);
        Assert.Contains("not usable", Assert.Throws<CertificateException>(() => ClusterTls.Load(mixed)).Message);
    }

    [Fact]
    public async Task Two_nodes_authenticate_each_other_and_a_client_without_a_certificate_is_refused()
    {
        var serverHost = Id160.Random();
        using var server = _ca.LoadNode("server", serverHost);
        using var client = _ca.LoadNode("client");

        var (serverSaw, clientSaw) = await HandshakeAsync(server.ServerOptions(requireClientCertificate: true), client.ClientOptions("127.0.0.1", serverHost));
        Assert.Equal(client.HostId, server.Validate(serverSaw, TlsPeerRole.Client).HostId);
        Assert.Equal(serverHost, client.Validate(clientSaw, TlsPeerRole.Server).HostId);

        // Expecting another host id, the client refuses the server.
        var refusals = new List<string>();
        await Assert.ThrowsAnyAsync<AuthenticationException>(() =>
            HandshakeAsync(server.ServerOptions(requireClientCertificate: true), client.ClientOptions("127.0.0.1", Id160.Random(), refusals.Add)));
        Assert.Contains(refusals, r => r.Contains($"is host {serverHost}"));

        // A client with no certificate at all is refused by a server that requires one.
        var serverRefusals = new List<string>();
        var anonymous = new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            RemoteCertificateValidationCallback = (_, c, _, _) => client.TryValidateServer(c, null, out _),
        };
        await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(server.ServerOptions(true, serverRefusals.Add), anonymous));
        Assert.Contains("no certificate was presented", serverRefusals);
    }

    /// <summary>Runs both ends of a TLS handshake over a loopback TCP connection; returns what each side saw of the other.</summary>
    private static async Task<(X509Certificate? ServerSaw, X509Certificate? ClientSaw)> HandshakeAsync(SslServerAuthenticationOptions serverOptions, SslClientAuthenticationOptions clientOptions)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var outgoing = new TcpClient();
        var connecting = outgoing.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var incoming = await listener.AcceptTcpClientAsync();
        await connecting;
        await using var serverStream = new SslStream(incoming.GetStream());
        await using var clientStream = new SslStream(outgoing.GetStream());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serverSide = serverStream.AuthenticateAsServerAsync(serverOptions, timeout.Token);
        var clientSide = clientStream.AuthenticateAsClientAsync(clientOptions, timeout.Token);
        try
        {
            await Task.WhenAll(serverSide, clientSide);
        }
        catch
        {
            // Whichever side refused, the other sees its connection end: report the refusal, not the hang-up.
            outgoing.Close();
            incoming.Close();
            foreach (var side in new[] { serverSide, clientSide })
                if (side.Exception?.InnerException is AuthenticationException a) throw a;
            throw;
        }
        return (serverStream.RemoteCertificate, clientStream.RemoteCertificate);
    }
}
