// The HTTP API's settings: where it listens, its TLS credentials, and its limits (cloudfs.http, HttpSettings).
using System.Net;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;

namespace CloudFs.Host.Http;

/// <param name="Settings">cloudfs.http as the node read it (tests: CloudFsSettings.Default.Http).</param>
internal sealed record HttpApiOptions(IPEndPoint Endpoint, HttpSettings Settings)
{
    /// <summary>POST /log from addresses other than loopback (cloudfs.http.allow-remote-log).</summary>
    public bool AllowRemoteLog { get; init; } = Settings.AllowRemoteLog;
    /// <summary>Bytes read from the gateway per step of a GET; a multiple of 512 (not a setting: tests make it small).</summary>
    public int ChunkSize { get; init; } = 1 << 20;
    /// <summary>Largest request body but POST /log's (cloudfs.http.max-body-size); a PUT is buffered whole so that a short body writes nothing.</summary>
    public int MaxPutBytes { get; init; } = Settings.MaxBodySize;
    /// <summary>Slowest request body accepted after <see cref="MinBodyRateGrace"/>, bytes per second; 0: no limit (cloudfs.http.min-body-rate).</summary>
    public double MinBodyRate { get; init; } = Settings.MinBodyRate;
    public TimeSpan MinBodyRateGrace { get; init; } = Settings.MinBodyRateGrace;
    /// <summary>With credentials the API is HTTPS, and every endpoint but the open ones needs a client certificate of the cluster.</summary>
    public ClusterTls? Tls { get; init; }
}
