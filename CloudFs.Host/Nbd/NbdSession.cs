// What option haggling settled for one connection: the export (a volume) and the reply features the client chose.
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

internal sealed record NbdSession(
    Id160 Volume,
    long SizeBytes,
    ushort TransmissionFlags,
    bool StructuredReplies,
    bool BaseAllocation)
{
    public bool ReadOnly => (TransmissionFlags & NbdProtocol.FlagReadOnly) != 0;

    /// <summary>The transmission flags this server advertises for a volume, given what was negotiated so far.</summary>
    public static ushort FlagsFor(VolumeInfo volume, bool structuredReplies)
    {
        // CAN_MULTI_CONN is honest because the gateway's FlushAsync covers writes from every connection.
        var flags = (ushort)(NbdProtocol.FlagHasFlags | NbdProtocol.FlagSendFlush | NbdProtocol.FlagSendFua
            | NbdProtocol.FlagSendTrim | NbdProtocol.FlagSendWriteZeroes | NbdProtocol.FlagCanMultiConn);
        // A READ reply is always one chunk, so "don't fragment" is free to offer once structured replies exist.
        if (structuredReplies) flags |= NbdProtocol.FlagSendDf;
        if (!Writable(volume)) flags |= NbdProtocol.FlagReadOnly;
        return flags;
    }

    /// <summary>Writable through this node: its own writable volumes, and replicated volumes (written through their
    /// primary, wherever it is). A lone copy without the secret (e.g. applied from a stream) is read-only.</summary>
    public static bool Writable(VolumeInfo volume) => volume.IsWritable || volume.Replicas.Count > 1;
}
