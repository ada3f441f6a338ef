// One transmission-phase request header (28 bytes on the wire) and its parser.
using System.Buffers;
using System.Buffers.Binary;

namespace CloudFs.Host.Nbd;

internal readonly record struct NbdRequest(uint Magic, ushort Flags, ushort Type, ulong Cookie, ulong Offset, uint Length)
{
    public bool Fua => (Flags & NbdProtocol.CmdFlagFua) != 0;
    public bool ReqOne => (Flags & NbdProtocol.CmdFlagReqOne) != 0;

    /// <summary>Parses the first <see cref="NbdProtocol.RequestHeaderSize"/> bytes of <paramref name="buffer"/>.</summary>
    public static NbdRequest Parse(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> h = stackalloc byte[NbdProtocol.RequestHeaderSize];
        buffer.Slice(0, NbdProtocol.RequestHeaderSize).CopyTo(h);
        return new NbdRequest(
            BinaryPrimitives.ReadUInt32BigEndian(h),
            BinaryPrimitives.ReadUInt16BigEndian(h[4..]),
            BinaryPrimitives.ReadUInt16BigEndian(h[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(h[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(h[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(h[24..]));
    }

    /// <summary>
    /// The error this request earns before it reaches the gateway (0 when it is well-formed for this session).
    /// Checked here so the gateway only ever sees aligned, in-range requests of the size the server advertised.
    /// </summary>
    public uint Validate(NbdSession session)
    {
        if ((Flags & ~NbdProtocol.CmdFlagsKnown) != 0) return NbdErrors.EINVAL;
        switch (Type)
        {
            case NbdProtocol.CmdFlush:
                return 0; // Offset and length of FLUSH carry no meaning; tolerate whatever the client sent.
            case NbdProtocol.CmdRead:
            case NbdProtocol.CmdWrite:
                if (Length > NbdProtocol.MaximumPayload) return NbdErrors.EINVAL;
                break;
            case NbdProtocol.CmdTrim:
            case NbdProtocol.CmdWriteZeroes:
                break;
            case NbdProtocol.CmdBlockStatus:
                if (!session.BaseAllocation) return NbdErrors.EINVAL; // no meta context was selected
                break;
            default:
                return NbdErrors.EINVAL; // CACHE, RESIZE, anything unknown: not advertised
        }
        if (Length == 0) return NbdErrors.EINVAL;
        if (Offset % NbdProtocol.MinimumBlockSize != 0 || Length % NbdProtocol.MinimumBlockSize != 0) return NbdErrors.EINVAL;
        if (Offset > (ulong)session.SizeBytes || Length > (ulong)session.SizeBytes - Offset) return NbdErrors.EINVAL;
        if (session.ReadOnly && Type is NbdProtocol.CmdWrite or NbdProtocol.CmdTrim or NbdProtocol.CmdWriteZeroes) return NbdErrors.EPERM;
        return 0;
    }
}
