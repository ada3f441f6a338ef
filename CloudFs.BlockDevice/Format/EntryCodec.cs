// Builds and verifies entries (header sector + CRC table sectors + stored blocks), the same bytes in the log and in streams.
using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace CloudFs.BlockDevice.Format;

/// <summary>An encoded entry in a pooled array; returned to the pool once written.</summary>
internal sealed class EntryBuffer(byte[] array, int length) : IDisposable
{
    /// <summary>Entries reach 1 MiB + 9 KiB, above ArrayPool.Shared's largest bucket: a pool sized for them.</summary>
    public static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(2 << 20, 64);

    private byte[] _array = array;
    public byte[] Array => _array;
    public int Length { get; } = length;
    public Span<byte> Span => Array.AsSpan(0, Length);
    public Span<byte> Header => Array.AsSpan(0, EntryHeader.Size);

    /// <summary>Returns the array to the pool once, even if two threads race to dispose (a device failure path).</summary>
    public void Dispose()
    {
        var a = Interlocked.Exchange(ref _array, []);
        if (a.Length > 0) Pool.Return(a);
    }
}

internal static class EntryCodec
{
    private const int B = LogStore.BlockSize;

    [ThreadStatic] private static IncrementalHash? t_sha;

    public static EntryBuffer Allocate(int stored)
    {
        var len = EntryHeader.TotalBytesFor(stored);
        var arr = EntryBuffer.Pool.Rent(len);
        System.Array.Clear(arr, 0, EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(stored)));
        return new EntryBuffer(arr, len);
    }

    /// <summary>A data entry for 512-aligned <paramref name="data"/> at <paramref name="firstBlock"/>: all-zero blocks are left out.</summary>
    public static EntryBuffer BuildData(EntryKind kind, Id160 volume, long firstBlock, ReadOnlySpan<byte> data, long timestamp)
    {
        var blocks = data.Length / B;
        Span<byte> bitmap = stackalloc byte[EntryHeader.BitmapBytes];
        bitmap.Clear();
        var stored = 0;
        for (var i = 0; i < blocks; i++)
            if (data.Slice(i * B, B).ContainsAnyExcept((byte)0)) { bitmap[i >> 3] |= (byte)(1 << (i & 7)); stored++; }
        var e = Allocate(stored);
        var s = e.Span;
        WriteCommon(s, kind, 0, volume, firstBlock, blocks, stored, timestamp);
        bitmap.CopyTo(s[EntryHeader.OffBitmap..]);
        var dataOff = B * (1 + EntryHeader.TableSectorsFor(stored));
        var k = 0;
        for (var i = 0; i < blocks; i++)
        {
            if ((bitmap[i >> 3] & (1 << (i & 7))) == 0) continue;
            var dst = s.Slice(dataOff + k * B, B);
            data.Slice(i * B, B).CopyTo(dst);
            SetBlockCrc(s, k, Crc32C.Compute(dst));
            k++;
        }
        WriteDigest(s, ComputeDigest(s));
        return e;
    }

    /// <summary>A metadata entry (Create, Branch, Zero, ViewChange) with a payload of at most 256 bytes.</summary>
    public static EntryBuffer BuildMetadata(EntryKind kind, Id160 volume, long firstBlock, ReadOnlySpan<byte> payload, long timestamp)
    {
        var e = Allocate(0);
        var s = e.Span;
        WriteCommon(s, kind, payload.Length, volume, firstBlock, 0, 0, timestamp);
        payload.CopyTo(s[EntryHeader.OffBitmap..]);
        WriteDigest(s, ComputeDigest(s));
        return e;
    }

    private static void WriteCommon(Span<byte> s, EntryKind kind, int payloadLength, Id160 volume, long firstBlock, int blocks, int stored, long timestamp)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(s, EntryHeader.Magic);
        s[EntryHeader.OffVersionByte] = EntryHeader.FormatVersion;
        s[EntryHeader.OffKind] = (byte)kind;
        BinaryPrimitives.WriteUInt16LittleEndian(s[EntryHeader.OffPayloadLength..], (ushort)payloadLength);
        volume.WriteTo(s[EntryHeader.OffVolume..]);
        BinaryPrimitives.WriteInt64LittleEndian(s[EntryHeader.OffFirstBlock..], firstBlock);
        BinaryPrimitives.WriteUInt16LittleEndian(s[EntryHeader.OffBlockCount..], (ushort)blocks);
        BinaryPrimitives.WriteUInt16LittleEndian(s[EntryHeader.OffStoredCount..], (ushort)stored);
        BinaryPrimitives.WriteInt64LittleEndian(s[EntryHeader.OffTimestamp..], timestamp);
    }

    public static void WriteDigest(Span<byte> s, Id160 digest) => digest.WriteTo(s[EntryHeader.OffDigest..]);

    /// <summary>
    /// The "update" of the chain: SHA-256/160 over the entry's device-independent content fields and stored data.
    /// Volume, parent, version, lsn, segment seq and the checksums are not part of it (the chain and the CRCs cover them).
    /// </summary>
    public static Id160 ComputeDigest(ReadOnlySpan<byte> entry)
    {
        var sha = t_sha ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(entry.Slice(EntryHeader.OffVersionByte, 4));
        sha.AppendData(entry[EntryHeader.OffFirstBlock..EntryHeader.OffInlineCrc]);
        int stored = BinaryPrimitives.ReadUInt16LittleEndian(entry[EntryHeader.OffStoredCount..]);
        if (stored > 0) sha.AppendData(entry.Slice(B * (1 + EntryHeader.TableSectorsFor(stored)), stored * B));
        Span<byte> full = stackalloc byte[32];
        sha.GetHashAndReset(full);
        return new Id160(full);
    }

    public static void SetChain(Span<byte> s, Id160 volume, long lsn, Id160 parent, Id160 version)
    {
        volume.WriteTo(s[EntryHeader.OffVolume..]);
        BinaryPrimitives.WriteInt64LittleEndian(s[EntryHeader.OffLsn..], lsn);
        parent.WriteTo(s[EntryHeader.OffParent..]);
        version.WriteTo(s[EntryHeader.OffVersion..]);
    }

    /// <summary>Stamps the segment seq and the header CRC (over the header sector up to the CRC and the table sectors).</summary>
    public static void Seal(Span<byte> s, ulong seq)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(s[EntryHeader.OffSeq..], seq);
        BinaryPrimitives.WriteUInt32LittleEndian(s[EntryHeader.OffHeaderCrc..], HeaderCrc(s));
    }

    public static uint HeaderCrc(ReadOnlySpan<byte> s)
    {
        int stored = BinaryPrimitives.ReadUInt16LittleEndian(s[EntryHeader.OffStoredCount..]);
        var crc = Crc32C.Append(0xFFFFFFFFu, s[..EntryHeader.OffHeaderCrc]);
        var table = EntryHeader.TableSectorsFor(stored);
        if (table > 0) crc = Crc32C.Append(crc, s.Slice(B, table * B));
        return ~crc;
    }

    /// <summary>True when the header sector + table sectors in <paramref name="meta"/> carry a matching CRC.</summary>
    public static bool HeaderCrcMatches(ReadOnlySpan<byte> meta) =>
        BinaryPrimitives.ReadUInt32LittleEndian(meta[EntryHeader.OffHeaderCrc..]) == HeaderCrc(meta);

    public static uint GetBlockCrc(ReadOnlySpan<byte> meta, int storedIndex) =>
        storedIndex < EntryHeader.InlineCrcs
            ? BinaryPrimitives.ReadUInt32LittleEndian(meta[(EntryHeader.OffInlineCrc + 4 * storedIndex)..])
            : BinaryPrimitives.ReadUInt32LittleEndian(meta[(B + 4 * (storedIndex - EntryHeader.InlineCrcs))..]);

    private static void SetBlockCrc(Span<byte> s, int storedIndex, uint crc)
    {
        if (storedIndex < EntryHeader.InlineCrcs) BinaryPrimitives.WriteUInt32LittleEndian(s[(EntryHeader.OffInlineCrc + 4 * storedIndex)..], crc);
        else BinaryPrimitives.WriteUInt32LittleEndian(s[(B + 4 * (storedIndex - EntryHeader.InlineCrcs))..], crc);
    }

    /// <summary>
    /// Full verification of a whole entry: parse + bounds, header CRC, every stored block's CRC, digest.
    /// Returns null when good, otherwise the reason.
    /// </summary>
    public static string? Verify(ReadOnlySpan<byte> entry, out EntryHeader h)
    {
        if (!EntryHeader.TryParse(entry, out h, out var error)) return error;
        if (entry.Length < h.TotalBytes) return "the entry is truncated";
        if (!HeaderCrcMatches(entry)) return "the entry header fails its checksum";
        var dataOff = B * h.MetaSectors;
        for (var k = 0; k < h.StoredCount; k++)
            if (Crc32C.Compute(entry.Slice(dataOff + k * B, B)) != GetBlockCrc(entry, k)) return $"stored block {k} fails its checksum";
        if (ComputeDigest(entry) != h.Digest) return "the content digest does not match the entry";
        if (h.Kind == EntryKind.Zero && (h.PayloadLength != 8 || BinaryPrimitives.ReadInt64LittleEndian(entry[EntryHeader.OffBitmap..]) <= 0))
            return "a zero entry needs a positive length";
        return null;
    }
}
