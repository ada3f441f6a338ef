// The HTTP API's settings: where it listens, its TLS credentials, and its limits (cloudfs.http in hocon/cloudfs.conf).
using System.Net;
using Akka.Configuration;
using CloudFs.Actors.Security;

namespace CloudFs.Host.Http;

internal sealed record HttpApiOptions(IPEndPoint Endpoint)
{
    /// <summary>POST /log from addresses other than loopback (cloudfs.http.allow-remote-log).</summary>
    public bool AllowRemoteLog { get; init; }
    /// <summary>Bytes read from the gateway per step of a GET; a multiple of 512.</summary>
    public int ChunkSize { get; init; } = 1 << 20;
    /// <summary>Largest request body but POST /log's (cloudfs.http.max-body-size); a PUT is buffered whole so that a short body writes nothing.</summary>
    public int MaxPutBytes { get; init; } = 32 << 20;
    /// <summary>Slowest request body accepted after <see cref="MinBodyRateGrace"/>, bytes per second; 0: no limit (cloudfs.http.min-body-rate).</summary>
    public double MinBodyRate { get; init; } = 240;
    public TimeSpan MinBodyRateGrace { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>With credentials the API is HTTPS, and every endpoint but the open ones needs a client certificate of the cluster.</summary>
    public ClusterTls? Tls { get; init; }

    public static HttpApiOptions From(Config config, IPEndPoint endpoint, ClusterTls? tls)
    {
        var defaults = new HttpApiOptions(endpoint);
        var maxBody = config.GetByteSize("cloudfs.http.max-body-size") ?? defaults.MaxPutBytes;
        if (maxBody is < 512 or > int.MaxValue) throw new FormatException("cloudfs.http.max-body-size must lie between 512 bytes and 2 GiB");
        var rate = config.GetDouble("cloudfs.http.min-body-rate", defaults.MinBodyRate);
        if (rate < 0) throw new FormatException("cloudfs.http.min-body-rate must not be negative");
        var grace = config.GetTimeSpan("cloudfs.http.min-body-rate-grace", defaults.MinBodyRateGrace);
        if (grace <= TimeSpan.FromSeconds(1)) throw new FormatException("cloudfs.http.min-body-rate-grace must be longer than 1s (Kestrel's minimum)");
        return defaults with
        {
            AllowRemoteLog = config.GetBoolean("cloudfs.http.allow-remote-log", false),
            MaxPutBytes = (int)maxBody,
            MinBodyRate = rate,
            MinBodyRateGrace = grace,
            Tls = tls,
        };
    }
}
