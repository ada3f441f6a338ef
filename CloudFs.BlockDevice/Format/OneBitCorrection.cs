// One flipped bit in a CRC32C-protected record (an entry header with its CRC table, a segment record, a durable mark):
// CRC32C tells every single-bit error of a given length apart from every other, so trying each bit finds the one.
namespace CloudFs.BlockDevice.Format;

internal static class OneBitCorrection
{
    /// <summary>Whether a record (starting at the span's first byte) verifies.</summary>
    public delegate bool Validity(ReadOnlySpan<byte> record);

    /// <summary>
    /// Flips each bit of the first <paramref name="length"/> bytes of <paramref name="record"/> in turn until
    /// <paramref name="valid"/> holds; returns that bit with the record left corrected, or -1 with the record as it was.
    /// An all-zero first sector (never written) is not a record and is left alone.
    /// </summary>
    public static int TryCorrect(Span<byte> record, int length, Validity valid)
    {
        if (!record[..Math.Min(length, EntryHeader.Size)].ContainsAnyExcept((byte)0)) return -1;
        for (var bit = 0; bit < length * 8; bit++)
        {
            record[bit >> 3] ^= (byte)(1 << (bit & 7));
            if (valid(record)) return bit;
            record[bit >> 3] ^= (byte)(1 << (bit & 7));
        }
        return -1;
    }

    /// <summary>
    /// An entry's header and CRC-table sectors (at most <paramref name="room"/> bytes) corrected when one bit is off:
    /// the sectors the header says it has when it parses, else the header sector alone (a bit there may be what keeps it
    /// from parsing; the CRC then still covers the table). Returns the bit, or -1.
    /// </summary>
    public static int TryCorrectEntryMeta(Span<byte> meta, int room)
    {
        var sectors = EntryHeader.TryParse(meta, out var asIs, out _) && asIs.StoredCount > 0 ? Math.Min(asIs.MetaSectors, room / EntryHeader.Size) : 1;
        return TryCorrect(meta, sectors * EntryHeader.Size, s => EntryHeader.TryParse(s, out var h, out _)
            && h.MetaSectors * EntryHeader.Size <= Math.Min(room, s.Length) && EntryCodec.HeaderCrcMatches(s[..(h.MetaSectors * EntryHeader.Size)]));
    }
}
