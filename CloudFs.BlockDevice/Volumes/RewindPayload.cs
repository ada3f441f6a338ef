// The payload of a Rewind entry (a fork split): the head the volume had when it was rewound and the branch that keeps
// the divergent suffix. The entry's own lsn and version fields name the entry the volume goes back to.
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Volumes;

internal readonly record struct RewindPayload(long FromLsn, Id160 FromVersion, Id160 Branch)
{
    public const int Size = 8 + 2 * Id160.Size;

    public int Encode(Span<byte> p)
    {
        BinaryPrimitives.WriteInt64LittleEndian(p, FromLsn);
        FromVersion.WriteTo(p[8..]);
        Branch.WriteTo(p[(8 + Id160.Size)..]);
        return Size;
    }

    /// <summary>Null when the payload is not exactly a rewind payload with a positive lsn.</summary>
    public static RewindPayload? Decode(ReadOnlySpan<byte> p)
    {
        if (p.Length != Size) return null;
        var lsn = BinaryPrimitives.ReadInt64LittleEndian(p);
        if (lsn < 2) return null;
        return new RewindPayload(lsn, new Id160(p[8..]), new Id160(p[(8 + Id160.Size)..]));
    }
}
