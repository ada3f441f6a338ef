// cloudfs.nbd { }: the NBD server's limits on connections, buffered payload and slow clients.
namespace CloudFs.Actors.Settings;

/// <param name="MaxConnections">Connections open at once; more are closed as soon as they are accepted.</param>
/// <param name="InFlightBytes">READ and WRITE payload bytes all connections together may hold; beyond it connections wait in line.</param>
/// <param name="ConnectionInFlightBytes">Payload bytes one connection may hold (64 requests of 32 MiB would be 2 GiB); one request always proceeds.</param>
/// <param name="PayloadTimeout">How long a WRITE's payload may take to arrive, and a batch of replies to be taken in, before the connection is dropped.</param>
/// <param name="HandshakeTimeout">How long a client may take from connecting (TLS included) to choosing an export.</param>
/// <param name="RetainedPayloadBytes">Bytes of large (≥ 1 MiB) payload buffers kept for reuse while idle; the rest go back to the operating system.</param>
public sealed record NbdSettings(int MaxConnections, long InFlightBytes, long ConnectionInFlightBytes, TimeSpan PayloadTimeout, TimeSpan HandshakeTimeout,
    long RetainedPayloadBytes)
{
    public static NbdSettings Read(SettingsReader r) => new(
        r.Count("cloudfs.nbd.max-connections", min: 1),
        r.Bytes("cloudfs.nbd.in-flight-bytes", min: 1),
        r.Bytes("cloudfs.nbd.connection-in-flight-bytes", min: 1),
        r.Duration("cloudfs.nbd.payload-timeout"),
        r.Duration("cloudfs.nbd.handshake-timeout"),
        r.Bytes("cloudfs.nbd.retained-payload-bytes"));
}
