// One transmission-phase request header (28 bytes on the wire), its parser, and the checks the protocol asks of it.
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
    /// The error this request earns before it reaches the gateway (0 when it is well-formed for this session), as
    /// proto.md's "Error values" names it: EINVAL for unknown commands or flags, misalignment, oversize, and reads,
    /// trims or status queries past the end; ENOSPC for writes past the end; EPERM for writes to a read-only export.
    /// Checked here so the gateway only ever sees aligned, in-range requests of the size the server advertised.
    /// </summary>
    public uint Validate(NbdSession session, out string? reason)
    {
        reason = null;
        if ((Flags & ~NbdProtocol.CmdFlagsKnown) != 0) return Invalid("unknown or unadvertised command flag", out reason);
        // Flags that only mean something to one command are refused elsewhere (FUA is harmless, so tolerated).
        if ((Flags & NbdProtocol.CmdFlagDf) != 0 && Type != NbdProtocol.CmdRead) return Invalid("DF applies to READ only", out reason);
        if ((Flags & NbdProtocol.CmdFlagReqOne) != 0 && Type != NbdProtocol.CmdBlockStatus) return Invalid("REQ_ONE applies to BLOCK_STATUS only", out reason);
        if ((Flags & NbdProtocol.CmdFlagNoHole) != 0 && Type != NbdProtocol.CmdWriteZeroes) return Invalid("NO_HOLE applies to WRITE_ZEROES only", out reason);
        bool writes = false;
        switch (Type)
        {
            case NbdProtocol.CmdFlush:
                return 0; // Offset and length of FLUSH are reserved; tolerate whatever the client sent.
            case NbdProtocol.CmdRead:
            case NbdProtocol.CmdWrite:
                if (Length > NbdProtocol.MaximumPayload) return Invalid("length exceeds the 32 MiB maximum block size", out reason);
                writes = Type == NbdProtocol.CmdWrite;
                break;
            case NbdProtocol.CmdWriteZeroes:
                writes = true;
                break;
            case NbdProtocol.CmdTrim:
                break;
            case NbdProtocol.CmdBlockStatus:
                if (!session.HasMetaContext) return Invalid("no meta context selected: negotiate base:allocation or cloudfs:changed-since:VERSION first", out reason);
                // The length of a status query is only a hint: an unaligned one is answered in whole blocks.
                if (Length == 0) return Invalid("zero length", out reason);
                if (Offset % NbdProtocol.MinimumBlockSize != 0) return Invalid("offset is not a multiple of 512", out reason);
                if (Offset > (ulong)session.SizeBytes || Length > (ulong)session.SizeBytes - Offset)
                    return Invalid("the range extends past the end of the export", out reason);
                return 0;
            default:
                return Invalid("unknown or unadvertised command", out reason); // CACHE, RESIZE, …
        }
        if (Length == 0) return Invalid("zero length", out reason);
        if (Offset % NbdProtocol.MinimumBlockSize != 0 || Length % NbdProtocol.MinimumBlockSize != 0)
            return Invalid("offset and length must be multiples of 512", out reason);
        if (Offset > (ulong)session.SizeBytes || Length > (ulong)session.SizeBytes - Offset)
        {
            reason = "the range extends past the end of the export";
            return writes ? NbdErrors.ENOSPC : NbdErrors.EINVAL;
        }
        if (session.ReadOnly && (writes || Type == NbdProtocol.CmdTrim))
        {
            reason = session.ReadOnlyReason;
            return NbdErrors.EPERM;
        }
        return 0;
    }

    private static uint Invalid(string why, out string? reason)
    {
        reason = why;
        return NbdErrors.EINVAL;
    }

    /// <summary>
    /// The window a BLOCK_STATUS reply describes: the requested range with its end rounded up to a whole block
    /// (the final descriptor may reach past an unaligned request), or down for REQ_ONE, whose single descriptor
    /// must not exceed the request. The export size is a whole number of blocks, so the window stays inside it.
    /// </summary>
    public (long Offset, long Length) StatusWindow()
    {
        const long block = NbdProtocol.MinimumBlockSize;
        long length = Length;
        if (length % block != 0)
            length = ReqOne && length > block ? length / block * block : (length + block - 1) / block * block;
        return ((long)Offset, Math.Min(length, uint.MaxValue / block * block)); // a descriptor length is a u32
    }
}
