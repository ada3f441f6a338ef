// The word-at-a-time walk of an entry's bit vector (Format/StoredRuns.cs) against the bit-by-bit walk it replaced: the
// same runs, in order, with the same stored indexes, for any bit vector and block count.
using CloudFs.BlockDevice.Format;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class StoredRunsTests
{
    private static List<StoredRun> BitByBit(byte[] header, int count)
    {
        var runs = new List<StoredRun>();
        var k = 0;
        for (var i = 0; i < count;)
        {
            var stored = EntryHeader.IsStored(header, i);
            var j = i + 1;
            while (j < count && EntryHeader.IsStored(header, j) == stored) j++;
            runs.Add(new StoredRun(i, j - i, stored, k));
            if (stored) k += j - i;
            i = j;
        }
        return runs;
    }

    private static List<StoredRun> Walked(byte[] header, int count)
    {
        var runs = new List<StoredRun>();
        foreach (var run in new StoredRuns(header, count)) runs.Add(run);
        return runs;
    }

    /// <summary>A header whose bit vector has runs of random lengths (so long runs across words occur), and a block count.</summary>
    private static Gen<(byte[] Header, int Count)> Headers() =>
        from count in Gen.Choose(1, 2048)
        from seed in Gen.Choose(0, int.MaxValue)
        select (Header(seed), count);

    private static byte[] Header(int seed)
    {
        var random = new Random(seed);
        var header = new byte[EntryHeader.Size];
        var bit = random.Next(2) == 1;
        for (var i = 0; i < 2048;)
        {
            var n = random.Next(4) == 0 ? random.Next(1, 300) : random.Next(1, 9);
            for (var j = i; j < Math.Min(2048, i + n); j++)
                if (bit) header[EntryHeader.OffBitmap + (j >> 3)] |= (byte)(1 << (j & 7));
            i += n;
            bit = !bit;
        }
        // Garbage before and after the bit vector must not be read.
        random.NextBytes(header.AsSpan(0, EntryHeader.OffBitmap));
        random.NextBytes(header.AsSpan(EntryHeader.OffBitmap + EntryHeader.BitmapBytes));
        return header;
    }

    [Property(MaxTest = 300)]
    public Property The_runs_are_those_of_the_bit_by_bit_walk() =>
        Prop.ForAll(Arb.From(Headers()), c => Assert.Equal(BitByBit(c.Header, c.Count), Walked(c.Header, c.Count)));

    [Theory]
    [InlineData(0x00, 2048)]
    [InlineData(0xFF, 2048)]
    [InlineData(0xFF, 64)]
    [InlineData(0x00, 65)]
    [InlineData(0xAA, 130)]
    public void Uniform_vectors_make_the_expected_runs(byte fill, int count)
    {
        var header = new byte[EntryHeader.Size];
        header.AsSpan(EntryHeader.OffBitmap, EntryHeader.BitmapBytes).Fill(fill);
        Assert.Equal(BitByBit(header, count), Walked(header, count));
        if (fill is 0x00 or 0xFF) Assert.Equal([new StoredRun(0, count, fill == 0xFF, 0)], Walked(header, count));
    }
}
