// A certificate directory in use (`--tls DIR`): this party's certificate and key, and the cluster authority it trusts.
// Every TLS channel (HTTP, NBD, Akka remoting, the feed port, the CLI) validates its peers here: against the cluster
// authority only (custom root trust, never the system store), and reads who the peer is (ClusterCertificate).
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Security;

/// <summary>The use a peer's certificate must allow: it connects to us (client) or we connect to it (server).</summary>
public enum TlsPeerRole { Client, Server }

public sealed class ClusterTls : IDisposable
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    private readonly Lazy<SslStreamCertificateContext> _serverContext;
    private readonly Lazy<SslStreamCertificateContext> _clientContext;

    private ClusterTls(string directory, X509Certificate2 authority, X509Certificate2 certificate, X509Certificate2 clientCertificate)
    {
        Directory = directory;
        Authority = authority;
        Certificate = certificate;
        ClientCertificate = clientCertificate;
        Identity = ClusterCertificate.Read(certificate);
        // Built once and shared by every connection (the context holds the chain it sends).
        _serverContext = new(() => SslStreamCertificateContext.Create(Certificate, null, offline: true));
        _clientContext = new(() => SslStreamCertificateContext.Create(ClientCertificate, null, offline: true));
    }

    public string Directory { get; }
    /// <summary>The cluster authority (ca-cert.pem): the only root any peer certificate may chain to.</summary>
    public X509Certificate2 Authority { get; }
    /// <summary>This party's certificate with its key: server-cert.pem for a node, client-cert.pem for an operator.</summary>
    public X509Certificate2 Certificate { get; }
    /// <summary>What this party presents as a TLS client: client-cert.pem (for a node the same certificate as its server one).</summary>
    public X509Certificate2 ClientCertificate { get; }
    /// <summary>Who <see cref="Certificate"/> says this party is.</summary>
    public ClusterCertificate Identity { get; }
    /// <summary>The host id of a node's certificate; null for an operator's.</summary>
    public Id160? HostId => Identity.HostId;

    /// <summary>
    /// Loads <paramref name="directory"/>: ca-cert.pem, and server-cert.pem + server-key.pem (a node's, made by
    /// `cloudfs cert issue --host-id`) or client-cert.pem + client-key.pem (an operator's, `cloudfs cert issue --client`).
    /// The own certificate must chain to the authority in the same directory.
    /// </summary>
    public static ClusterTls Load(string directory)
    {
        var full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full)) throw new CertificateException($"the certificate directory {full} does not exist");
        var authorityFile = Path.Combine(full, CertificateFiles.AuthorityCertificate);
        if (!File.Exists(authorityFile))
            throw new CertificateException($"{full} holds no {CertificateFiles.AuthorityCertificate}; make it with `cloudfs cert issue`");
        X509Certificate2? authority = null, own = null, client = null;
        try
        {
            authority = X509Certificate2.CreateFromPem(File.ReadAllText(authorityFile));
            var serverPair = Pair(full, CertificateFiles.ServerCertificate, CertificateFiles.ServerKey);
            var clientPair = Pair(full, CertificateFiles.ClientCertificate, CertificateFiles.ClientKey);
            if (serverPair is null && clientPair is null)
                throw new CertificateException($"{full} holds neither {CertificateFiles.ServerCertificate} and {CertificateFiles.ServerKey} nor {CertificateFiles.ClientCertificate} and {CertificateFiles.ClientKey}; make them with `cloudfs cert issue`");
            own = X509Certificate2.CreateFromPemFile(serverPair?.Certificate ?? clientPair!.Value.Certificate, serverPair?.Key ?? clientPair!.Value.Key);
            client = clientPair is { } c ? X509Certificate2.CreateFromPemFile(c.Certificate, c.Key) : own;
            var tls = new ClusterTls(full, authority, own, client);
            foreach (var (certificate, role) in new[] { (own, serverPair is null ? TlsPeerRole.Client : TlsPeerRole.Server), (client, TlsPeerRole.Client) })
                if (!tls.TryValidate(certificate, role, out _, out var reason))
                    throw new CertificateException($"the certificate in {full} is not usable: {reason}");
            return tls;
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or CertificateException)
        {
            if (!ReferenceEquals(client, own)) client?.Dispose();
            own?.Dispose();
            authority?.Dispose();
            if (e is CertificateException) throw;
            throw new CertificateException($"the certificates in {full} cannot be read ({e.Message.TrimEnd('.')})", e);
        }
    }

    private static (string Certificate, string Key)? Pair(string directory, string certificate, string key)
    {
        var c = Path.Combine(directory, certificate);
        var k = Path.Combine(directory, key);
        if (File.Exists(c) != File.Exists(k))
            throw new CertificateException($"{directory} holds only one of {certificate} and {key}");
        return File.Exists(c) ? (c, k) : null;
    }

    /// <summary>
    /// Checks that <paramref name="peer"/> was issued by this cluster's authority (and by nothing else: custom root
    /// trust, no system store), is valid now, allows <paramref name="role"/>, and names a host or an operator.
    /// On success <paramref name="identity"/> says who it is; otherwise <paramref name="reason"/> says why not, in one sentence.
    /// </summary>
    public bool TryValidate(X509Certificate? peer, TlsPeerRole role, out ClusterCertificate? identity, out string reason)
    {
        identity = null;
        if (peer is null)
        {
            reason = "no certificate was presented";
            return false;
        }
        var owned = peer as X509Certificate2 is null;
        var certificate = peer as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(peer.GetRawCertData());
        try
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(Authority);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            chain.ChainPolicy.ApplicationPolicy.Add(role == TlsPeerRole.Client ? ClientAuth : ServerAuth);
            var built = chain.Build(certificate);
            // The authority itself (which only its key's holder could present) is no party of the cluster.
            if (!built || chain.ChainElements.Count < 2 || !chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(Authority.RawDataMemory.Span))
            {
                var status = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim().TrimEnd('.')).Where(s => s.Length > 0).Distinct());
                reason = $"the certificate '{certificate.Subject}' is not one of this cluster's (issued by '{certificate.Issuer}'{(status.Length > 0 ? ": " + status : "")})";
                return false;
            }
            var read = ClusterCertificate.Read(certificate);
            if (!read.IsNode && !read.IsOperator)
            {
                reason = $"the certificate '{certificate.Subject}' names neither a host nor an operator";
                return false;
            }
            identity = read;
            reason = "";
            return true;
        }
        catch (CertificateException e)
        {
            reason = e.Message;
            return false;
        }
        finally
        {
            if (owned) certificate.Dispose();
        }
    }

    /// <summary>As <see cref="TryValidate"/>, throwing a <see cref="CertificateException"/> with the reason.</summary>
    public ClusterCertificate Validate(X509Certificate? peer, TlsPeerRole role) =>
        TryValidate(peer, role, out var identity, out var reason) ? identity! : throw new CertificateException(reason);

    /// <summary>
    /// For an SslStream that accepts connections with this party's certificate. With
    /// <paramref name="requireClientCertificate"/> a client must present a certificate of this cluster (a host's or an
    /// operator's), else the handshake fails; <paramref name="refused"/> hears why.
    /// </summary>
    public SslServerAuthenticationOptions ServerOptions(bool requireClientCertificate, Action<string>? refused = null) => new()
    {
        ServerCertificateContext = _serverContext.Value,
        ClientCertificateRequired = requireClientCertificate,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (certificate is null && !requireClientCertificate) return true;
            if (TryValidate(certificate, TlsPeerRole.Client, out _, out var reason)) return true;
            refused?.Invoke(reason);
            return false;
        },
    };

    /// <summary>
    /// For an SslStream that connects to a node, presenting <see cref="ClientCertificate"/>. The server must present
    /// a node certificate of this cluster, of host <paramref name="expectedHost"/> when given (the host name in
    /// <paramref name="targetHost"/> is not checked: a host's identity is its host id). <paramref name="refused"/> hears why not.
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions(string targetHost, Id160? expectedHost = null, Action<string>? refused = null) => new()
    {
        TargetHost = targetHost,
        ClientCertificateContext = _clientContext.Value,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (!TryValidateServer(certificate, expectedHost, out var reason)) { refused?.Invoke(reason); return false; }
            return true;
        },
    };

    /// <summary>The check <see cref="ClientOptions"/> makes of a server: a node of this cluster, of the expected host when given.</summary>
    public bool TryValidateServer(X509Certificate? certificate, Id160? expectedHost, out string reason)
    {
        if (!TryValidate(certificate, TlsPeerRole.Server, out var identity, out reason)) return false;
        if (identity!.HostId is not { } host)
        {
            reason = $"the server presented {identity}'s certificate, not a node's";
            return false;
        }
        if (expectedHost is { } expected && host != expected)
        {
            reason = $"the server is host {host}, not host {expected}";
            return false;
        }
        return true;
    }

    public void Dispose()
    {
        if (!ReferenceEquals(ClientCertificate, Certificate)) ClientCertificate.Dispose();
        Certificate.Dispose();
        Authority.Dispose();
    }
}
