// The changes stream's format (docs/BACKUP.md, "The changes stream"): what ChangeStreamWriter encodes, read back as the
// document says, and scripts/cloudfs-backup's `apply` of it: a whole stream makes the image TO, a stream cut anywhere
// or with wrong totals is refused with a reason and leaves the image as it was.
using CloudFs.BlockDevice;
using CloudFs.Host.Http;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Host;

public sealed class ChangeStreamWriterTests : IDisposable
{
    private const long Size = 64 << 10;
    private readonly TempDir _dir = new();
    private readonly Id160 _from = Id160.Random(), _to = Id160.Random();

    public void Dispose() => _dir.Dispose();

    /// <summary>TO: FROM (the image) with three ranges rewritten, the middle one longer than the writer's buffer.</summary>
    private static readonly (long Offset, int Length, byte Fill)[] Ranges = [(0, 512, 0x11), (4096, 5120, 0x22), (Size - 1024, 1024, 0x33)];

    private async Task<byte[]> EncodeAsync(int bufferSize = 1024)
    {
        var to = ImageAt(Size);
        foreach (var (offset, length, fill) in Ranges) to.AsSpan((int)offset, length).Fill(fill);
        using var output = new MemoryStream();
        using (var writer = new ChangeStreamWriter(output, bufferSize))
        {
            writer.WriteHeader(Size, _from, _to);
            foreach (var (offset, length, _) in Ranges)
                await writer.WriteRecordAsync(offset, length, (at, into) =>
                {
                    Assert.True(into.Length % 512 == 0 && into.Length <= bufferSize, "pieces are whole blocks within the buffer");
                    to.AsSpan((int)at, into.Length).CopyTo(into.Span);
                    return ValueTask.CompletedTask;
                }, CancellationToken.None);
            await writer.EndAsync(CancellationToken.None);
        }
        return output.ToArray();
    }

    /// <summary>FROM's bytes (the image before the incremental): a pattern of its own, <paramref name="length"/> long.</summary>
    private static byte[] ImageAt(long length) => Enumerable.Range(0, (int)length).Select(i => (byte)(i / 512 + 1)).ToArray();

    private static Task<ToolResult> ApplyAsync(string stream, string image) =>
        Tool.RunAsync("/usr/bin/python3", [Path.Combine(Repo.Root, "scripts", "cloudfs-backup"), "apply", stream, image]);

    [Fact]
    public async Task The_writer_encodes_the_header_records_and_end_record_as_documented()
    {
        var bytes = await EncodeAsync();
        var stream = ChangeStream.Parse(bytes);
        Assert.Equal((ChangeStreamWriter.FormatVersion, Size, _from, _to), (stream.FormatVersion, stream.SizeBytes, stream.From, stream.To));
        Assert.Equal(Ranges.Select(r => (r.Offset, (long)r.Length)), stream.Ranges());
        Assert.All(stream.Records, r => Assert.All(r.Data, b => Assert.Equal(Ranges.Single(x => x.Offset == r.Offset).Fill, b)));
        Assert.Equal((3L, 512L + 5120 + 1024), (stream.EndRecords, stream.EndBytes));
        Assert.Equal(ChangeStreamWriter.HeaderSize + 3 * ChangeStreamWriter.RecordHeaderSize + 512 + 5120 + 1024 + ChangeStreamWriter.EndSize, bytes.Length);
        // Whatever the buffer, the same bytes.
        Assert.Equal(bytes, await EncodeAsync(bufferSize: 1 << 20));
    }

    [Property(MaxTest = 100)]
    public Property Any_records_through_any_buffer_read_back_as_written()
    {
        // Records as (gap, length) in blocks: in offset order, not overlapping; a buffer from barely enough to larger than all.
        var records = Gen.ListOf(from gap in Gen.Choose(0, 8) from blocks in Gen.Choose(1, 12) select (gap, blocks));
        var buffers = Gen.Choose(ChangeStreamWriter.HeaderSize + ChangeStreamWriter.EndSize + 512, 16 << 10);
        return Prop.ForAll(Arb.From(records), Arb.From(buffers), (list, bufferSize) =>
        {
            var ranges = new List<(long Offset, int Length)>();
            long at = 0;
            foreach (var (gap, blocks) in list)
            {
                ranges.Add((at + gap * 512L, blocks * 512));
                at += gap * 512L + blocks * 512;
            }
            using var output = new MemoryStream();
            using (var writer = new ChangeStreamWriter(output, bufferSize))
            {
                writer.WriteHeader(at, _from, _to);
                foreach (var (offset, length) in ranges)
                    writer.WriteRecordAsync(offset, length, (o, into) =>
                    {
                        for (var i = 0; i < into.Length; i++) into.Span[i] = (byte)((o + i) * 31 / 512);
                        return ValueTask.CompletedTask;
                    }, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                writer.EndAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            var stream = ChangeStream.Parse(output.ToArray());
            Assert.Equal(ranges.Select(r => (r.Offset, (long)r.Length)), stream.Records.Select(r => (r.Offset, r.Length)));
            Assert.All(stream.Records, r => Assert.Equal(Enumerable.Range(0, (int)r.Length).Select(i => (byte)((r.Offset + i) * 31 / 512)), r.Data));
            Assert.Equal(((long)ranges.Count, ranges.Sum(r => (long)r.Length), at), (stream.EndRecords, stream.EndBytes, stream.SizeBytes));
        });
    }

    [Fact]
    public async Task The_script_applies_a_whole_stream_and_sets_the_image_to_the_size_at_TO()
    {
        var streamFile = _dir.File("changes.bin");
        await File.WriteAllBytesAsync(streamFile, await EncodeAsync());
        var image = _dir.File("image.img");
        // A longer image (FROM was larger): cut to the size at TO.
        await File.WriteAllBytesAsync(image, ImageAt(2 * Size));
        var applied = (await ApplyAsync(streamFile, image)).AssertOk();
        Assert.Contains($"incremental: {512 + 5120 + 1024} bytes in 3 ranges copied since {_from} to {_to}", applied.Out);
        var expected = ImageAt(Size);
        foreach (var (offset, length, fill) in Ranges) expected.AsSpan((int)offset, length).Fill(fill);
        Assert.Equal(expected, await File.ReadAllBytesAsync(image));
    }

    [Fact]
    public async Task The_script_refuses_a_cut_or_miscounted_stream_and_leaves_the_image_as_it_was()
    {
        var whole = await EncodeAsync();
        var endAt = whole.Length - ChangeStreamWriter.EndSize;
        var miscounted = whole.ToArray();
        miscounted[^1] ^= 1; // the end record's byte total
        var cases = new (string Name, byte[] Bytes, string Says)[]
        {
            ("inside the header", whole[..30], "cut short"),
            ("after the header", whole[..ChangeStreamWriter.HeaderSize], "cut short"),
            ("inside a record header", whole[..(ChangeStreamWriter.HeaderSize + 5)], "cut short"),
            ("inside a record's bytes", whole[..(ChangeStreamWriter.HeaderSize + 12 + 512 + 12 + 100)], "cut short"),
            ("before the end record", whole[..endAt], "cut short"),
            ("inside the end record", whole[..^1], "cut short"),
            ("with wrong totals", miscounted, "the end record counts"),
            ("with bytes after the end", [.. whole, 0], "after its end record"),
            ("of something else", "not a changes stream at all, but long enough to read a header of"u8.ToArray(), "not a CloudFS changes stream"),
        };
        var image = _dir.File("image.img");
        var before = ImageAt(2 * Size);
        foreach (var (name, bytes, says) in cases)
        {
            await File.WriteAllBytesAsync(image, before);
            var streamFile = _dir.File("cut.bin");
            await File.WriteAllBytesAsync(streamFile, bytes);
            var refused = await ApplyAsync(streamFile, image);
            Assert.True(refused.Code != 0, $"a stream {name} was applied: {refused}");
            Assert.Contains(says, refused.Err);
            var after = await File.ReadAllBytesAsync(image);
            Assert.True(before.SequenceEqual(after), $"a stream {name} changed the image");
        }
    }
}
