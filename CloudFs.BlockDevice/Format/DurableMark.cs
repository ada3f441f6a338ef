// The 512-byte record the log writer places after each completed fdatasync: "everything of the log before this
// position is durable". Recovery uses it to tell a torn tail (after the last flush) from corruption (before it).
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Format;

/// <param name="Seq">The seq of the segment the mark is written in.</param>
/// <param name="Index">The index of the segment the mark is written in.</param>
/// <param name="Durable">Everything of the log before this position was durable when the mark was placed.</param>
internal readonly record struct DurableMark(Guid DeviceId, ulong Seq, int Index, LogPosition Durable)
{
    public const int Size = 512;
    public const uint Magic = 0x44534643; // "CFSD"
    private const int CrcOffset = 56;

    public void Encode(Span<byte> s)
    {
        s[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        DeviceId.TryWriteBytes(s[8..]);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], Seq);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], Index);
        BinaryPrimitives.WriteUInt64LittleEndian(s[40..], Durable.Seq);
        BinaryPrimitives.WriteInt64LittleEndian(s[48..], Durable.Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(s[CrcOffset..], Crc32C.Compute(s[..CrcOffset]));
    }

    public static bool HasMagic(ReadOnlySpan<byte> s) => BinaryPrimitives.ReadUInt32LittleEndian(s) == Magic;

    public static bool TryDecode(ReadOnlySpan<byte> s, out DurableMark m)
    {
        m = default;
        if (s.Length < Size || !HasMagic(s)) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[CrcOffset..]) != Crc32C.Compute(s[..CrcOffset])) return false;
        m = new DurableMark(new Guid(s.Slice(8, 16)), BinaryPrimitives.ReadUInt64LittleEndian(s[24..]),
            BinaryPrimitives.ReadInt32LittleEndian(s[32..]),
            new LogPosition(BinaryPrimitives.ReadUInt64LittleEndian(s[40..]), BinaryPrimitives.ReadInt64LittleEndian(s[48..])));
        return true;
    }
}

/// <summary>A place in the log in log order: segment seqs grow along the log, offsets (absolute) within a segment.</summary>
internal readonly record struct LogPosition(ulong Seq, long Offset) : IComparable<LogPosition>
{
    public int CompareTo(LogPosition other) => Seq != other.Seq ? Seq.CompareTo(other.Seq) : Offset.CompareTo(other.Offset);
    public static bool operator <(LogPosition a, LogPosition b) => a.CompareTo(b) < 0;
    public static bool operator >(LogPosition a, LogPosition b) => a.CompareTo(b) > 0;
    public static bool operator <=(LogPosition a, LogPosition b) => a.CompareTo(b) <= 0;
    public static bool operator >=(LogPosition a, LogPosition b) => a.CompareTo(b) >= 0;
}
