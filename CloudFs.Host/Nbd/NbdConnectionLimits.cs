// What every connection of one NBD server shares: its TLS credentials, its time limits, the node's payload budget and
// its payload buffers, and the node's count of read-write attachments.
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Security;

namespace CloudFs.Host.Nbd;

internal sealed record NbdConnectionLimits(
    ClusterTls? Tls,
    TimeSpan HandshakeTimeout,
    TimeSpan PayloadTimeout,
    long ConnectionBudget,
    NbdPayloadBudget NodeBudget,
    PayloadBufferPool Buffers)
{
    /// <summary>Called when a connection is dropped because a WRITE payload stalled (for the metrics).</summary>
    public Action? PayloadTimedOut { get; init; }

    /// <summary>Where a connection that chose a writable export counts itself while it runs (`cloudfs rm` asks).</summary>
    public VolumeAttachments? Attachments { get; init; }

    /// <summary>The read-write attachment leases of this server's connections (null: none are taken).</summary>
    public NbdAttachmentLeases? Leases { get; init; }
}
