// The payload of a view-change entry, kept in the header's bit-vector area: the view number and the new replica set,
// the new primary first (docs/FORMAT.md, "Entries").
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Volumes;

internal sealed record ViewChangePayload(long ViewNumber, Id160[] Replicas)
{
    public int Encode(Span<byte> p)
    {
        BinaryPrimitives.WriteInt64LittleEndian(p, ViewNumber);
        p[8] = (byte)Replicas.Length;
        var o = 9;
        foreach (var r in Replicas) { r.WriteTo(p[o..]); o += Id160.Size; }
        return o;
    }

    /// <summary>Null when malformed: a view number below 1, no replica or more than the maximum, a wrong length.</summary>
    public static ViewChangePayload? Decode(ReadOnlySpan<byte> p)
    {
        if (p.Length < 9) return null;
        var view = BinaryPrimitives.ReadInt64LittleEndian(p);
        int n = p[8];
        if (view < 1 || n < 1 || n > CreatePayload.MaxReplicas || p.Length != 9 + n * Id160.Size) return null;
        var reps = new Id160[n];
        for (var i = 0; i < n; i++) reps[i] = new Id160(p[(9 + i * Id160.Size)..]);
        return new ViewChangePayload(view, reps);
    }
}
