// The NBD server's settings (cloudfs.nbd in hocon/cloudfs.conf), read once at start.
using Akka.Configuration;

namespace CloudFs.Host.Nbd;

public sealed record NbdSettings
{
    /// <summary>Connections open at once; more are closed as soon as they are accepted.</summary>
    public int MaxConnections { get; init; } = 512;
    /// <summary>READ and WRITE payload bytes all connections together may hold; beyond it connections wait in line.</summary>
    public long InFlightBytes { get; init; } = 512L << 20;
    /// <summary>Payload bytes one connection may hold (64 requests of 32 MiB would be 2 GiB); one request always proceeds.</summary>
    public long ConnectionInFlightBytes { get; init; } = 128L << 20;
    /// <summary>How long a WRITE's payload may take to arrive, and a batch of replies to be taken in, before the connection is dropped.</summary>
    public TimeSpan PayloadTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Bytes of large (≥ 1 MiB) payload buffers kept for reuse while idle; the rest go back to the operating system.</summary>
    public long RetainedPayloadBytes { get; init; } = 64L << 20;
    /// <summary>How long a client may take from connecting (TLS included) to choosing an export.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public static NbdSettings From(Config config)
    {
        var defaults = new NbdSettings();
        var settings = new NbdSettings
        {
            MaxConnections = config.GetInt("cloudfs.nbd.max-connections", defaults.MaxConnections),
            InFlightBytes = config.GetByteSize("cloudfs.nbd.in-flight-bytes") ?? defaults.InFlightBytes,
            ConnectionInFlightBytes = config.GetByteSize("cloudfs.nbd.connection-in-flight-bytes") ?? defaults.ConnectionInFlightBytes,
            PayloadTimeout = config.GetTimeSpan("cloudfs.nbd.payload-timeout", defaults.PayloadTimeout),
            HandshakeTimeout = config.GetTimeSpan("cloudfs.nbd.handshake-timeout", defaults.HandshakeTimeout),
            RetainedPayloadBytes = config.GetByteSize("cloudfs.nbd.retained-payload-bytes") ?? defaults.RetainedPayloadBytes,
        };
        if (settings.MaxConnections <= 0 || settings.InFlightBytes <= 0 || settings.ConnectionInFlightBytes <= 0
            || settings.PayloadTimeout <= TimeSpan.Zero || settings.HandshakeTimeout <= TimeSpan.Zero || settings.RetainedPayloadBytes < 0)
            throw new FormatException("cloudfs.nbd: max-connections, in-flight-bytes, connection-in-flight-bytes, payload-timeout and handshake-timeout must be positive, retained-payload-bytes not negative");
        return settings;
    }
}
