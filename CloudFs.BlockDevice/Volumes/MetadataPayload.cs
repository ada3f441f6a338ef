// The small payloads of metadata entries (Create, Branch, Zero), kept in the header's bit-vector area. A creation entry
// may end with the volume's name (u8 length, ASCII), absent in entries written before names existed.
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Volumes;

internal sealed record CreatePayload(long SizeBytes, VolumeMode Mode, Id160[] Replicas, Id160? SourceVersion = null, Id160? SourceVolume = null,
    string? Name = null)
{
    public const int MaxReplicas = 10;

    public int Encode(Span<byte> p)
    {
        var o = 0;
        if (SourceVersion is { } sv)
        {
            sv.WriteTo(p);
            SourceVolume!.Value.WriteTo(p[20..]);
            o = 40;
        }
        BinaryPrimitives.WriteInt64LittleEndian(p[o..], SizeBytes);
        p[o + 8] = (byte)Mode;
        p[o + 9] = (byte)Replicas.Length;
        o += 10;
        foreach (var r in Replicas) { r.WriteTo(p[o..]); o += Id160.Size; }
        if (Name is not null)
        {
            var name = VolumeName.Encode(Name);
            if (o + 1 + name.Length > p.Length) throw new InvalidRangeException($"the name '{Name}' does not fit the creation entry");
            p[o] = (byte)name.Length;
            name.CopyTo(p[(o + 1)..]);
            o += 1 + name.Length;
        }
        return o;
    }

    public static CreatePayload? Decode(ReadOnlySpan<byte> p, bool isBranch)
    {
        var o = 0;
        Id160? sv = null, svol = null;
        if (isBranch)
        {
            if (p.Length < 40) return null;
            sv = new Id160(p);
            svol = new Id160(p[20..]);
            o = 40;
        }
        if (p.Length < o + 10) return null;
        var size = BinaryPrimitives.ReadInt64LittleEndian(p[o..]);
        var mode = p[o + 8];
        int n = p[o + 9];
        o += 10;
        if (size <= 0 || size % LogStore.BlockSize != 0 || mode > 1 || n > MaxReplicas || p.Length < o + n * Id160.Size) return null;
        var reps = new Id160[n];
        for (var i = 0; i < n; i++) reps[i] = new Id160(p[(o + i * Id160.Size)..]);
        o += n * Id160.Size;
        string? name = null;
        if (p.Length > o)
        {
            // The optional name: its length, then exactly that many bytes of a valid name.
            if (p.Length != o + 1 + p[o] || VolumeName.Decode(p.Slice(o + 1, p[o])) is not { } decoded) return null;
            name = decoded;
        }
        return new CreatePayload(size, (VolumeMode)mode, reps, sv, svol, name);
    }
}
