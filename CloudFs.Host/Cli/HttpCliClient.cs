// The CLI's HTTP client for a node's API: plain HTTP, or with --tls DIR HTTPS presenting DIR's client certificate and
// accepting only a node certificate of the same cluster authority. Connecting (name resolution included) is bounded by
// ConnectTimeout, so a contact with no node behind it fails in about that time.
using System.Net.Http;
using System.Security.Authentication;
using CloudFs.Actors.Security;

namespace CloudFs.Host.Cli;

internal sealed class HttpCliClient : IDisposable
{
    private readonly ClusterTls? _tls;

    private HttpCliClient(ClusterTls? tls, HttpClient client, Uri baseUri)
    {
        _tls = tls;
        Client = client;
        BaseUri = baseUri;
    }

    public HttpClient Client { get; }
    /// <summary>How long resolving and connecting to a node may take.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(1.5);

    /// <summary>http://HOST:PORT/ or https://HOST:PORT/.</summary>
    public Uri BaseUri { get; }

    /// <summary>A client for the node at <paramref name="node"/>; with <paramref name="tlsDirectory"/> (a node's or an operator's) over HTTPS.
    /// Streaming: no time limit on the whole exchange (a stream, a scrub); otherwise 60 s.</summary>
    public static HttpCliClient Create(NodeContact node, string? tlsDirectory, bool streaming)
    {
        ClusterTls? tls = null;
        if (tlsDirectory is { Length: > 0 })
        {
            try { tls = ClusterTls.Load(tlsDirectory); }
            catch (CertificateException e) { throw new CliException($"--tls {tlsDirectory}: {e.Message}"); }
        }
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = ConnectTimeout,
            // A node is reached directly: an http_proxy of the environment would answer for an address with no node behind it.
            UseProxy = false,
        };
        if (tls is not null)
        {
            handler.SslOptions.ClientCertificates = [tls.ClientCertificate];
            handler.SslOptions.EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
            handler.SslOptions.CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
            // The node's identity is its host id in a certificate of this cluster, not the address typed here.
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => tls.TryValidateServer(certificate, null, out _);
        }
        var client = new HttpClient(handler) { Timeout = streaming ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(60) };
        var scheme = tls is null ? "http" : "https";
        return new HttpCliClient(tls, client, new Uri($"{scheme}://{node}/")) { Node = node };
    }

    public NodeContact Node { get; private init; } = NodeContact.Default;

    public Uri For(string relative) => new(BaseUri, relative);

    public void Dispose()
    {
        Client.Dispose();
        _tls?.Dispose();
    }
}
