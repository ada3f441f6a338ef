// The 4 KiB device header at offset 0: identity (host, device uuid) and layout (checkpoint slots, segments).
using System.Buffers.Binary;
using System.Text;

namespace CloudFs.BlockDevice.Format;

internal sealed record DeviceHeader(
    Id160 HostId,
    Guid DeviceId,
    int SegmentSize,
    long CheckpointSlotA,
    long CheckpointSlotB,
    long CheckpointSlotSize,
    long FirstSegmentOffset,
    int SegmentCount,
    ulong InitialSegmentSeq)
{
    public const int Size = 4096;
    public const uint FormatVersion = 1;
    private const int CrcOffset = 100;
    public static ReadOnlySpan<byte> Magic => "CLOUDFS1"u8;

    /// <summary>Lays out a device of <paramref name="capacity"/> bytes: two slots of max(4 MiB, capacity/64), then segments over all the rest.</summary>
    public static DeviceHeader Layout(Id160 hostId, long capacity, int segmentSize, ulong initialSeq)
    {
        var slot = Math.Max(4L << 20, capacity / 64);
        slot = (slot + 4095) & ~4095L;
        var first = Size + 2 * slot;
        var count = (capacity - first) / segmentSize;
        if (count < 2) throw new DeviceException($"the device is too small: {capacity} bytes hold fewer than 2 segments of {segmentSize} bytes after the header and checkpoint slots");
        return new DeviceHeader(hostId, Guid.NewGuid(), segmentSize, Size, Size + slot, slot, first, (int)Math.Min(count, int.MaxValue), initialSeq);
    }

    public long SegmentOffset(int index) => FirstSegmentOffset + (long)index * SegmentSize;

    public void Encode(Span<byte> page)
    {
        page[..Size].Clear();
        Magic.CopyTo(page);
        BinaryPrimitives.WriteUInt32LittleEndian(page[8..], FormatVersion);
        HostId.WriteTo(page[16..]);
        DeviceId.TryWriteBytes(page[36..]);
        BinaryPrimitives.WriteInt32LittleEndian(page[52..], SegmentSize);
        BinaryPrimitives.WriteInt64LittleEndian(page[56..], CheckpointSlotA);
        BinaryPrimitives.WriteInt64LittleEndian(page[64..], CheckpointSlotB);
        BinaryPrimitives.WriteInt64LittleEndian(page[72..], CheckpointSlotSize);
        BinaryPrimitives.WriteInt64LittleEndian(page[80..], FirstSegmentOffset);
        BinaryPrimitives.WriteInt32LittleEndian(page[88..], SegmentCount);
        BinaryPrimitives.WriteUInt64LittleEndian(page[92..], InitialSegmentSeq);
        BinaryPrimitives.WriteUInt32LittleEndian(page[CrcOffset..], Crc32C.Compute(page[..CrcOffset]));
    }

    /// <summary>False with <paramref name="error"/> null: the header is all zero (unformatted). False with an error: garbage.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> page, out DeviceHeader header, out string? error)
    {
        header = null!;
        error = null;
        if (!page[..Size].ContainsAnyExcept((byte)0)) return false;
        if (!page[..8].SequenceEqual(Magic)) { error = $"no CloudFS header (magic '{Encoding.ASCII.GetString(page[..8])}')"; return false; }
        if (BinaryPrimitives.ReadUInt32LittleEndian(page[CrcOffset..]) != Crc32C.Compute(page[..CrcOffset])) { error = "the device header fails its checksum"; return false; }
        var version = BinaryPrimitives.ReadUInt32LittleEndian(page[8..]);
        if (version != FormatVersion) { error = $"unsupported format version {version}"; return false; }
        header = new DeviceHeader(new Id160(page[16..]), new Guid(page.Slice(36, 16)),
            BinaryPrimitives.ReadInt32LittleEndian(page[52..]),
            BinaryPrimitives.ReadInt64LittleEndian(page[56..]), BinaryPrimitives.ReadInt64LittleEndian(page[64..]),
            BinaryPrimitives.ReadInt64LittleEndian(page[72..]), BinaryPrimitives.ReadInt64LittleEndian(page[80..]),
            BinaryPrimitives.ReadInt32LittleEndian(page[88..]), BinaryPrimitives.ReadUInt64LittleEndian(page[92..]));
        if (header.SegmentSize < 65536 || header.SegmentSize % 4096 != 0 || header.SegmentCount < 1 || header.FirstSegmentOffset < Size)
        { error = "the device header describes an impossible layout"; return false; }
        return true;
    }
}
