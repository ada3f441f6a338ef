// What option haggling settled for one connection: the export (a volume, or one version of it) and the reply
// features and meta contexts the client chose.
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

/// <param name="Version">The version an export named VOL@VERSION serves (read-only); null: the volume as it is now.</param>
/// <param name="ChangedSince">The version of the cloudfs:changed-since context selected, or null.</param>
/// <param name="Attachment">The lease of the volume's read-write attachment the session writes under: its writes,
/// zero-writes and flushes carry it, and the volume's writer refuses them once another holder took the volume
/// (docs/ATTACH.md, "Fencing"). 0: none (read-only, or a server that keeps no leases).</param>
internal sealed record NbdSession(
    Id160 Volume,
    long SizeBytes,
    ushort TransmissionFlags,
    bool StructuredReplies,
    bool BaseAllocation,
    Id160? ChangedSince = null,
    Id160? Version = null,
    long Attachment = 0)
{
    public bool ReadOnly => (TransmissionFlags & NbdProtocol.FlagReadOnly) != 0;

    /// <summary>Why writes are refused with EPERM on this export (when it is read-only).</summary>
    public string ReadOnlyReason => Version is { } v
        ? $"the export serves version {v} of the volume, read-only (the export named by the volume alone takes writes)"
        : "the export is read-only: this node does not hold the volume's secret";

    /// <summary>At least one meta context was selected: BLOCK_STATUS may be asked.</summary>
    public bool HasMetaContext => BaseAllocation || ChangedSince is not null;

    /// <summary>The transmission flags this server advertises for a volume, given what was negotiated so far.</summary>
    public static ushort FlagsFor(VolumeInfo volume, bool structuredReplies, bool version = false)
    {
        // CAN_MULTI_CONN is honest because the gateway's FlushAsync covers writes from every connection.
        var flags = (ushort)(NbdProtocol.FlagHasFlags | NbdProtocol.FlagSendFlush | NbdProtocol.FlagSendFua
            | NbdProtocol.FlagSendTrim | NbdProtocol.FlagSendWriteZeroes | NbdProtocol.FlagCanMultiConn);
        // A READ reply is always one chunk, so "don't fragment" is free to offer once structured replies exist.
        if (structuredReplies) flags |= NbdProtocol.FlagSendDf;
        if (version || !Writable(volume)) flags |= NbdProtocol.FlagReadOnly;
        return flags;
    }

    /// <summary>Writable through this node: its own writable volumes, and replicated volumes (written through their
    /// primary, wherever it is). A lone copy without the secret (e.g. applied from a stream) is read-only.</summary>
    public static bool Writable(VolumeInfo volume) => volume.IsWritable || volume.Replicas.Count > 1;
}
