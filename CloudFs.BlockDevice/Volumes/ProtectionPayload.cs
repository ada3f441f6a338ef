// The payload of a protect entry (`cloudfs protect VERSION` / `unprotect`), kept in the header's bit-vector area: the
// version, its lsn in the volume's chain, and whether it is protected from then on or no longer. A chain entry, so every
// replica, a restarted node and a new primary know which versions compaction keeps (docs/FORMAT.md, "Protected versions").
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Volumes;

internal sealed record ProtectionPayload(Id160 Version, long Lsn, bool Protect)
{
    public const int Size = Id160.Size + 9;

    public int Encode(Span<byte> p)
    {
        Version.WriteTo(p);
        BinaryPrimitives.WriteInt64LittleEndian(p[Id160.Size..], Lsn);
        p[Id160.Size + 8] = Protect ? (byte)1 : (byte)0;
        return Size;
    }

    /// <summary>Null when malformed: a wrong length, an lsn that is not before the entry's own
    /// (<paramref name="entryLsn"/>), or a flag other than 0 or 1.</summary>
    public static ProtectionPayload? Decode(ReadOnlySpan<byte> p, long entryLsn)
    {
        if (p.Length != Size) return null;
        var lsn = BinaryPrimitives.ReadInt64LittleEndian(p[Id160.Size..]);
        var flag = p[Id160.Size + 8];
        if (lsn < 1 || lsn >= entryLsn || flag > 1) return null;
        return new ProtectionPayload(new Id160(p[..Id160.Size]), lsn, flag == 1);
    }
}
