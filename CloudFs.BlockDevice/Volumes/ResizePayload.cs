// The payload of a resize entry, kept in the header's bit-vector area: the new size and the size before it. The size
// before makes the entry self-contained: a shrink drops the blocks between the two from the index wherever the entry
// is applied (live, streamed, replayed, or rebuilt from headers), without knowing the state before it.
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Volumes;

internal sealed record ResizePayload(long NewSize, long OldSize)
{
    public const int Size = 16;

    /// <summary>The largest volume size accepted (2^60 bytes: byte offsets stay far from overflowing an i64).</summary>
    public const long MaxVolumeBytes = 1L << 60;

    public int Encode(Span<byte> p)
    {
        BinaryPrimitives.WriteInt64LittleEndian(p, NewSize);
        BinaryPrimitives.WriteInt64LittleEndian(p[8..], OldSize);
        return Size;
    }

    /// <summary>Null when malformed: a wrong length, or a size that is not a positive multiple of the block size.</summary>
    public static ResizePayload? Decode(ReadOnlySpan<byte> p)
    {
        if (p.Length != Size) return null;
        var next = BinaryPrimitives.ReadInt64LittleEndian(p);
        var old = BinaryPrimitives.ReadInt64LittleEndian(p[8..]);
        return Valid(next) && Valid(old) ? new ResizePayload(next, old) : null;
    }

    public static bool Valid(long size) => size > 0 && size <= MaxVolumeBytes && size % LogStore.BlockSize == 0;
}
