// The checkpoint form of an ExtentIndex: a small header then one varint-coded record per extent, each field a
// delta from the previous record so sequential runs take a few bytes. Reading checks every bound.
namespace CloudFs.BlockDevice.Index;

using System.Buffers;
using System.Buffers.Binary;

/// <summary>
/// Layout (little-endian):
/// <code>
///   u32  magic   0x58444958 ("XIDX")
///   u8   version 1
///   u64  count   number of records
///   count × record, each four LEB128 varints:
///     gap      = Start − previous End           (unsigned; previous End starts at 0)
///     length   = Count                          (unsigned, 1 .. 2^31−1)
///     logDelta = LogBlock − previous LogBlock   (zigzag; previous starts at 0; LogBlock −1 = zeroed)
///     entDelta = EntryBlock − previous EntryBlock (zigzag; previous starts at 0)
/// </code>
/// Records are in logical order and never overlap. Only the index's own extents are written (a branch's
/// parent is the engine's business). Any truncated, overlong or out-of-range field raises
/// <see cref="InvalidDataException"/>.
/// </summary>
internal static class ExtentIndexFormat
{
    internal const uint Magic = 0x58444958;
    internal const byte Version = 1;
    internal const int HeaderSize = 4 + 1 + 8;
    private const int MaxRecordSize = 4 * 10;

    internal static void Write(ExtentIndex index, IBufferWriter<byte> output)
    {
        var head = output.GetSpan(HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(head, Magic);
        head[4] = Version;
        BinaryPrimitives.WriteUInt64LittleEndian(head[5..], (ulong)index.Count);
        output.Advance(HeaderSize);
        long prevEnd = 0, prevLog = 0, prevEntry = 0;
        // Batch records into one span request per ~100 records rather than one per record.
        const int Batch = 4096;
        var span = output.GetSpan(Batch);
        int used = 0;
        foreach (var x in index.Enumerate())
        {
            if (span.Length - used < MaxRecordSize)
            {
                output.Advance(used);
                span = output.GetSpan(Batch);
                used = 0;
            }
            used += WriteVarint(span[used..], (ulong)(x.Start - prevEnd));
            used += WriteVarint(span[used..], (ulong)x.Count);
            used += WriteVarint(span[used..], ZigZag(unchecked(x.LogBlock - prevLog)));
            used += WriteVarint(span[used..], ZigZag(unchecked(x.EntryBlock - prevEntry)));
            prevEnd = x.End;
            prevLog = x.LogBlock;
            prevEntry = x.EntryBlock;
        }
        output.Advance(used);
    }

    internal static ExtentIndex Read(ReadOnlySpan<byte> input, out int consumed)
    {
        if (input.Length < HeaderSize) throw Bad($"truncated header ({input.Length} of {HeaderSize} bytes)");
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(input);
        if (magic != Magic) throw Bad($"bad magic 0x{magic:X8}");
        if (input[4] != Version) throw Bad($"unknown version {input[4]}");
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(input[5..]);
        // Each record takes at least four bytes: a count beyond that cannot be honest (and must not size anything).
        if (count > (ulong)(input.Length - HeaderSize) / 4) throw Bad($"record count {count} exceeds the {input.Length - HeaderSize} bytes that follow");
        var index = new ExtentIndex();
        int pos = HeaderSize;
        long prevEnd = 0, prevLog = 0, prevEntry = 0;
        for (ulong r = 0; r < count; r++)
        {
            ulong gap = ReadVarint(input, ref pos, r);
            ulong length = ReadVarint(input, ref pos, r);
            long log = unchecked(prevLog + UnZigZag(ReadVarint(input, ref pos, r)));
            long entry = unchecked(prevEntry + UnZigZag(ReadVarint(input, ref pos, r)));
            if (gap > (ulong)(long.MaxValue - prevEnd)) throw Bad($"record {r}: start out of range");
            long start = prevEnd + (long)gap;
            if (length == 0 || length > int.MaxValue) throw Bad($"record {r}: length {length} out of range");
            if (start > long.MaxValue - (long)length) throw Bad($"record {r}: end out of range");
            if (log < Extent.ZeroLogBlock || log > long.MaxValue - (long)length) throw Bad($"record {r}: log block {log} out of range");
            index.AppendSorted(start, (int)length, log, entry);
            prevEnd = start + (long)length;
            prevLog = log;
            prevEntry = entry;
        }
        consumed = pos;
        return index;
    }

    private static ulong ZigZag(long v) => (ulong)((v << 1) ^ (v >> 63));

    private static long UnZigZag(ulong v) => (long)(v >> 1) ^ -(long)(v & 1);

    private static int WriteVarint(Span<byte> dst, ulong v)
    {
        int n = 0;
        while (v >= 0x80)
        {
            dst[n++] = (byte)(v | 0x80);
            v >>= 7;
        }
        dst[n++] = (byte)v;
        return n;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> src, ref int pos, ulong record)
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= src.Length) throw Bad($"record {record}: truncated");
            byte b = src[pos++];
            // The tenth byte may only carry the top bit of a 64-bit value.
            if (shift == 63 && b > 1) throw Bad($"record {record}: varint overflows 64 bits");
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
        throw Bad($"record {record}: varint longer than 10 bytes");
    }

    private static InvalidDataException Bad(string why) => new($"Extent index checkpoint is corrupt: {why}.");
}
