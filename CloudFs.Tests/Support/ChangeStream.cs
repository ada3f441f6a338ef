// A reader of the changes stream (docs/BACKUP.md, "The changes stream") written from the document, not from the
// server's encoder: what the tests check a node's GET /volumes/VOLUME/changes against.
using System.Buffers.Binary;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Support;

internal sealed record ChangeRecord(long Offset, byte[] Data)
{
    public long Length => Data.Length;
}

internal sealed record ChangeStream(uint FormatVersion, long SizeBytes, Id160 From, Id160 To, IReadOnlyList<ChangeRecord> Records,
    long EndRecords, long EndBytes)
{
    public static ReadOnlySpan<byte> Magic => "CFSDIFF\n"u8;

    /// <summary>The header's fields from its 60 bytes.</summary>
    public static (uint Format, long Size, Id160 From, Id160 To) Header(ReadOnlySpan<byte> header)
    {
        Assert.True(header[..8].SequenceEqual(Magic), "the stream starts with the magic CFSDIFF\\n");
        return (BinaryPrimitives.ReadUInt32BigEndian(header[8..]), BinaryPrimitives.ReadInt64BigEndian(header[12..]),
            new Id160(header.Slice(20, Id160.Size)), new Id160(header.Slice(40, Id160.Size)));
    }

    /// <summary>A whole stream; fails the test on anything the document does not allow.</summary>
    public static ChangeStream Parse(byte[] bytes)
    {
        var s = bytes.AsSpan();
        Assert.True(s.Length >= 60, $"a stream of {s.Length} bytes has no header");
        var (format, size, from, to) = Header(s);
        s = s[60..];
        var records = new List<ChangeRecord>();
        while (true)
        {
            Assert.True(s.Length >= 12, "the stream ends without its end record");
            var offset = BinaryPrimitives.ReadUInt64BigEndian(s);
            var length = BinaryPrimitives.ReadUInt32BigEndian(s[8..]);
            s = s[12..];
            if (offset == ulong.MaxValue)
            {
                Assert.Equal(0u, length);
                Assert.Equal(16, s.Length);
                return new ChangeStream(format, size, from, to, records,
                    BinaryPrimitives.ReadInt64BigEndian(s), BinaryPrimitives.ReadInt64BigEndian(s[8..]));
            }
            Assert.True(length > 0 && offset % 512 == 0 && length % 512 == 0, $"record {offset}+{length} is whole blocks");
            Assert.True(records.Count == 0 || (long)offset >= records[^1].Offset + records[^1].Length, "records are in offset order");
            Assert.True((long)offset + length <= size, "records lie within the size at TO");
            Assert.True(s.Length >= length, "a record's bytes are all there");
            records.Add(new ChangeRecord((long)offset, s[..(int)length].ToArray()));
            s = s[(int)length..];
        }
    }

    /// <summary>The records' ranges with adjacent ones joined (a range longer than a record comes as several).</summary>
    public IReadOnlyList<(long Offset, long Length)> Ranges()
    {
        var ranges = new List<(long Offset, long Length)>();
        foreach (var r in Records)
            if (ranges.Count > 0 && ranges[^1].Offset + ranges[^1].Length == r.Offset) ranges[^1] = (ranges[^1].Offset, ranges[^1].Length + r.Length);
            else ranges.Add((r.Offset, r.Length));
        return ranges;
    }
}
