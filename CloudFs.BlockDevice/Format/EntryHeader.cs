// The 512-byte header sector of an entry: fixed little-endian offsets (docs/FORMAT.md), parsed with bounds checks.
using System.Buffers.Binary;
using System.Numerics;

namespace CloudFs.BlockDevice.Format;

internal readonly record struct EntryHeader(
    EntryKind Kind,
    int PayloadLength,
    Id160 Volume,
    Id160 Parent,
    Id160 Version,
    Id160 Digest,
    long Lsn,
    ulong SegmentSeq,
    long FirstBlock,
    int BlockCount,
    int StoredCount,
    long TimestampUnixMs)
{
    public const int Size = 512;
    public const uint Magic = 0x45534643; // "CFSE"
    public const byte FormatVersion = 1;
    public const int InlineCrcs = 32;
    public const int CrcsPerTableSector = 128;
    public const int BitmapBytes = 256;

    public const int OffVersionByte = 4, OffKind = 5, OffPayloadLength = 6, OffVolume = 8, OffParent = 28, OffVersion = 48,
        OffDigest = 68, OffLsn = 88, OffSeq = 96, OffFirstBlock = 104, OffBlockCount = 112, OffStoredCount = 114,
        OffTimestamp = 116, OffBitmap = 124, OffInlineCrc = 380, OffHeaderCrc = 508;

    public int TableSectors => TableSectorsFor(StoredCount);
    /// <summary>Header + table sectors + stored blocks, in bytes.</summary>
    public int TotalBytes => TotalBytesFor(StoredCount);
    public int MetaSectors => 1 + TableSectors;

    public static int TableSectorsFor(int stored) => stored <= InlineCrcs ? 0 : (stored - InlineCrcs + CrcsPerTableSector - 1) / CrcsPerTableSector;
    public static int TotalBytesFor(int stored) => LogStore.BlockSize * (1 + TableSectorsFor(stored) + stored);

    public static bool IsMetadata(EntryKind k) => k is EntryKind.Create or EntryKind.Branch or EntryKind.ViewChange or EntryKind.Zero or EntryKind.Rewind
        or EntryKind.Trash or EntryKind.Restore or EntryKind.Resize or EntryKind.Purge or EntryKind.Protect;

    /// <summary>Parses and bounds-checks a header sector; does not verify checksums (see <see cref="EntryCodec"/>).</summary>
    public static bool TryParse(ReadOnlySpan<byte> s, out EntryHeader h, out string? error)
    {
        h = default;
        error = null;
        if (s.Length < Size) { error = "short header"; return false; }
        if (BinaryPrimitives.ReadUInt32LittleEndian(s) != Magic) { error = "no entry magic"; return false; }
        if (s[OffVersionByte] != FormatVersion) { error = $"unsupported entry format version {s[OffVersionByte]}"; return false; }
        var kind = (EntryKind)s[OffKind];
        if (kind is not (EntryKind.Create or EntryKind.Data or EntryKind.Zero or EntryKind.Branch or EntryKind.ViewChange or EntryKind.Relocation or EntryKind.Rewind
            or EntryKind.ResyncData or EntryKind.ResyncCommit or EntryKind.Trash or EntryKind.Restore or EntryKind.Resize or EntryKind.Purge or EntryKind.Protect))
        { error = $"unknown entry kind {(int)kind}"; return false; }
        int payload = BinaryPrimitives.ReadUInt16LittleEndian(s[OffPayloadLength..]);
        int blocks = BinaryPrimitives.ReadUInt16LittleEndian(s[OffBlockCount..]);
        int stored = BinaryPrimitives.ReadUInt16LittleEndian(s[OffStoredCount..]);
        var lsn = BinaryPrimitives.ReadInt64LittleEndian(s[OffLsn..]);
        var first = BinaryPrimitives.ReadInt64LittleEndian(s[OffFirstBlock..]);
        if (lsn < 1) { error = $"lsn {lsn} is not positive"; return false; }
        if (first < 0) { error = "negative first block"; return false; }
        if (kind is EntryKind.Data or EntryKind.Relocation or EntryKind.ResyncData or EntryKind.ResyncCommit)
        {
            if (blocks < 1 || blocks > LogStore.MaxEntryBlocks) { error = $"block count {blocks} is out of 1..{LogStore.MaxEntryBlocks}"; return false; }
            if (stored > blocks) { error = "more stored blocks than blocks"; return false; }
            if (payload != 0) { error = "a data entry carries no payload"; return false; }
            var bitmap = s.Slice(OffBitmap, BitmapBytes);
            var pop = 0;
            for (var i = 0; i < BitmapBytes; i += 8) pop += BitOperations.PopCount(BinaryPrimitives.ReadUInt64LittleEndian(bitmap[i..]));
            if (pop != stored) { error = "the stored-block bit vector does not match the stored count"; return false; }
            if (blocks < LogStore.MaxEntryBlocks && HasBitAtOrAbove(bitmap, blocks)) { error = "the bit vector marks blocks beyond the extent"; return false; }
        }
        else
        {
            if (stored != 0 || blocks != 0) { error = "a metadata entry stores no blocks"; return false; }
            if (payload > BitmapBytes) { error = $"payload length {payload} exceeds {BitmapBytes}"; return false; }
        }
        h = new EntryHeader(kind, payload, new Id160(s[OffVolume..]), new Id160(s[OffParent..]), new Id160(s[OffVersion..]),
            new Id160(s[OffDigest..]), lsn, BinaryPrimitives.ReadUInt64LittleEndian(s[OffSeq..]), first, blocks, stored,
            BinaryPrimitives.ReadInt64LittleEndian(s[OffTimestamp..]));
        return true;
    }

    private static bool HasBitAtOrAbove(ReadOnlySpan<byte> bitmap, int bit)
    {
        var byteIndex = bit >> 3;
        if ((bitmap[byteIndex] >> (bit & 7)) != 0) return true;
        return bitmap[(byteIndex + 1)..].ContainsAnyExcept((byte)0);
    }

    public static bool IsStored(ReadOnlySpan<byte> header, int block) => (header[OffBitmap + (block >> 3)] & (1 << (block & 7))) != 0;

    /// <summary>Logical blocks this entry covers (a Zero entry keeps its length in the payload).</summary>
    public long CoveredBlocks(ReadOnlySpan<byte> header) =>
        Kind == EntryKind.Zero ? BinaryPrimitives.ReadInt64LittleEndian(header[OffBitmap..]) : BlockCount;
}
