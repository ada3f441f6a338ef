// The NBD wire vocabulary (NetworkBlockDevice/nbd doc/proto.md): magics, option and reply codes, flags, sizes.
// Everything on the wire is big-endian; the names follow the protocol document so they can be grepped against it.
namespace CloudFs.Host.Nbd;

internal static class NbdProtocol
{
    // Handshake magics.
    public const ulong NbdMagic = 0x4e42444d41474943;          // "NBDMAGIC"
    public const ulong OptionMagic = 0x49484156454F5054;       // "IHAVEOPT"
    public const ulong OptionReplyMagic = 0x0003e889045565a9;

    // Handshake flags (server) and client flags.
    public const ushort FlagFixedNewstyle = 1 << 0;
    public const ushort FlagNoZeroes = 1 << 1;
    public const uint ClientFlagFixedNewstyle = 1 << 0;
    public const uint ClientFlagNoZeroes = 1 << 1;

    // Options.
    public const uint OptExportName = 1;
    public const uint OptAbort = 2;
    public const uint OptList = 3;
    public const uint OptStartTls = 5;
    public const uint OptInfo = 6;
    public const uint OptGo = 7;
    public const uint OptStructuredReply = 8;
    public const uint OptListMetaContext = 9;
    public const uint OptSetMetaContext = 10;

    // Option replies.
    public const uint RepAck = 1;
    public const uint RepServer = 2;
    public const uint RepInfo = 3;
    public const uint RepMetaContext = 4;
    public const uint RepErrUnsup = 0x80000000 | 1;
    public const uint RepErrPolicy = 0x80000000 | 2;
    public const uint RepErrInvalid = 0x80000000 | 3;
    public const uint RepErrTlsReqd = 0x80000000 | 5;
    public const uint RepErrUnknown = 0x80000000 | 6;
    public const uint RepErrTooBig = 0x80000000 | 9;

    // NBD_REP_INFO types.
    public const ushort InfoExport = 0;
    public const ushort InfoName = 1;
    public const ushort InfoDescription = 2;
    public const ushort InfoBlockSize = 3;

    // Transmission flags.
    public const ushort FlagHasFlags = 1 << 0;
    public const ushort FlagReadOnly = 1 << 1;
    public const ushort FlagSendFlush = 1 << 2;
    public const ushort FlagSendFua = 1 << 3;
    public const ushort FlagSendTrim = 1 << 5;
    public const ushort FlagSendWriteZeroes = 1 << 6;
    public const ushort FlagSendDf = 1 << 7;
    public const ushort FlagCanMultiConn = 1 << 8;

    // Requests.
    public const uint RequestMagic = 0x25609513;
    public const int RequestHeaderSize = 28;
    public const ushort CmdRead = 0;
    public const ushort CmdWrite = 1;
    public const ushort CmdDisc = 2;
    public const ushort CmdFlush = 3;
    public const ushort CmdTrim = 4;
    public const ushort CmdWriteZeroes = 6;
    public const ushort CmdBlockStatus = 7;

    public const ushort CmdFlagFua = 1 << 0;
    public const ushort CmdFlagNoHole = 1 << 1;
    public const ushort CmdFlagDf = 1 << 2;
    public const ushort CmdFlagReqOne = 1 << 3;
    /// <summary>Every request flag this server understands; FAST_ZERO and PAYLOAD_LEN are not advertised, so they are refused.</summary>
    public const ushort CmdFlagsKnown = CmdFlagFua | CmdFlagNoHole | CmdFlagDf | CmdFlagReqOne;

    // Replies.
    public const uint SimpleReplyMagic = 0x67446698;
    public const int SimpleReplyHeaderSize = 16;
    public const uint StructuredReplyMagic = 0x668e33ef;
    public const int StructuredReplyHeaderSize = 20;
    public const ushort ReplyFlagDone = 1 << 0;
    public const ushort ReplyTypeNone = 0;
    public const ushort ReplyTypeOffsetData = 1;
    public const ushort ReplyTypeBlockStatus = 5;
    public const ushort ReplyTypeError = (1 << 15) + 1;

    // base:allocation.
    public const string BaseAllocation = "base:allocation";
    public const uint BaseAllocationContextId = 1;
    public const uint StateHole = 1 << 0;
    public const uint StateZero = 1 << 1;

    // cloudfs:changed-since:<version> (SPEC.md): flag 1 on ranges written after that version.
    public const string ChangedSincePrefix = "cloudfs:changed-since:";
    public const uint ChangedSinceContextId = 2;
    public const uint StateChanged = 1 << 0;

    // Size constraints this server advertises (NBD_INFO_BLOCK_SIZE) and enforces.
    public const int MinimumBlockSize = 512;
    public const int PreferredBlockSize = 4096;
    public const int MaximumPayload = 32 * 1024 * 1024;
    /// <summary>Largest option payload accepted during haggling: names are at most 4 KiB, so this leaves room for meta-context queries.</summary>
    public const int MaximumOptionLength = 64 * 1024;
}
