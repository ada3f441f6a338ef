// The two 512-byte records that frame segments: a header at each segment's start, and an end record naming the next segment.
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Format;

internal readonly record struct SegmentRecord(bool IsEnd, Guid DeviceId, ulong Seq, int Index, int NextIndex, ulong NextSeq)
{
    public const int Size = 512;
    public const uint HeaderMagic = 0x48534643; // "CFSH"
    public const uint EndMagic = 0x4E534643;    // "CFSN"
    private const int CrcOffset = 48;

    public static SegmentRecord Header(Guid device, ulong seq, int index) => new(false, device, seq, index, -1, 0);
    public static SegmentRecord End(Guid device, ulong seq, int index, int nextIndex, ulong nextSeq) => new(true, device, seq, index, nextIndex, nextSeq);

    public void Encode(Span<byte> s)
    {
        s[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(s, IsEnd ? EndMagic : HeaderMagic);
        DeviceId.TryWriteBytes(s[8..]);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], Seq);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], Index);
        BinaryPrimitives.WriteInt32LittleEndian(s[36..], NextIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(s[40..], NextSeq);
        BinaryPrimitives.WriteUInt32LittleEndian(s[CrcOffset..], Crc32C.Compute(s[..CrcOffset]));
    }

    public static bool IsRecordMagic(ReadOnlySpan<byte> s)
    {
        var m = BinaryPrimitives.ReadUInt32LittleEndian(s);
        return m is HeaderMagic or EndMagic;
    }

    public static bool TryDecode(ReadOnlySpan<byte> s, out SegmentRecord r)
    {
        r = default;
        var m = BinaryPrimitives.ReadUInt32LittleEndian(s);
        if (m is not (HeaderMagic or EndMagic)) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[CrcOffset..]) != Crc32C.Compute(s[..CrcOffset])) return false;
        r = new SegmentRecord(m == EndMagic, new Guid(s.Slice(8, 16)), BinaryPrimitives.ReadUInt64LittleEndian(s[24..]),
            BinaryPrimitives.ReadInt32LittleEndian(s[32..]), BinaryPrimitives.ReadInt32LittleEndian(s[36..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[40..]));
        return true;
    }
}
