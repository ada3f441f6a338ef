// The entry format: zero blocks left out, CRC tables beyond 32 blocks, and every single-bit flip detected.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class EntryCodecTests
{
    private static byte[] Data(int blocks, int seed, double zeroFraction)
    {
        var rnd = new Random(seed);
        var b = new byte[blocks * 512];
        for (var i = 0; i < blocks; i++)
            if (rnd.NextDouble() >= zeroFraction) rnd.NextBytes(b.AsSpan(i * 512, 512));
        return b;
    }

    [Fact]
    public void All_zero_blocks_are_neither_stored_nor_counted()
    {
        var data = new byte[8 * 512];
        data[3 * 512 + 7] = 1;
        using var e = EntryCodec.BuildData(EntryKind.Data, Id160.Random(), 10, data, 1);
        EntryCodec.SetChain(e.Span, Id160.Random(), 1, Id160.Zero, Id160.Random());
        Assert.True(EntryHeader.TryParse(e.Span, out var h, out _));
        Assert.Equal(8, h.BlockCount);
        Assert.Equal(1, h.StoredCount);
        Assert.Equal(2 * 512, e.Length);
        Assert.True(EntryHeader.IsStored(e.Span, 3));
        Assert.False(EntryHeader.IsStored(e.Span, 2));
        EntryCodec.Seal(e.Span, 5);
        Assert.Null(EntryCodec.Verify(e.Span, out _));
    }

    [Fact]
    public void A_full_extent_has_crc_table_sectors_and_verifies()
    {
        var data = Data(LogStore.MaxEntryBlocks, 3, 0);
        using var e = EntryCodec.BuildData(EntryKind.Data, Id160.Random(), 0, data, 1);
        EntryCodec.SetChain(e.Span, Id160.Random(), 1, Id160.Zero, Id160.Random());
        Assert.True(EntryHeader.TryParse(e.Span, out var h, out _));
        Assert.Equal(16, h.TableSectors);
        EntryCodec.Seal(e.Span, 9);
        Assert.Null(EntryCodec.Verify(e.Span, out _));
        e.Span[e.Length - 1] ^= 0x80;
        Assert.Contains("stored block 2047", EntryCodec.Verify(e.Span, out _));
    }

    [Property(MaxTest = 60)]
    public Property Any_single_bit_flip_in_an_entry_is_detected()
    {
        var gen = from blocks in Gen.Choose(1, 80)
                  from seed in Gen.Choose(0, 1000)
                  from zeros in Gen.Elements(0.0, 0.5, 1.0)
                  from pos in Gen.Choose(0, int.MaxValue)
                  from bit in Gen.Choose(0, 7)
                  select (blocks, seed, zeros, pos, bit);
        return Prop.ForAll(Arb.From(gen), x =>
        {
            using var e = EntryCodec.BuildData(EntryKind.Data, Id160.Random(), 100, Data(x.blocks, x.seed, x.zeros), 7);
            EntryCodec.SetChain(e.Span, Id160.Random(), 3, Id160.Random(), Id160.Random());
            EntryCodec.Seal(e.Span, 42);
            Assert.Null(EntryCodec.Verify(e.Span, out _));
            var at = x.pos % e.Length;
            e.Span[at] ^= (byte)(1 << x.bit);
            Assert.NotNull(EntryCodec.Verify(e.Span, out _));
        });
    }

    [Fact]
    public void The_digest_ignores_chain_fields_and_segment_seq_but_covers_data()
    {
        var data = Data(4, 1, 0);
        using var a = EntryCodec.BuildData(EntryKind.Data, Id160.Random(), 0, data, 5);
        using var b = EntryCodec.BuildData(EntryKind.Data, Id160.Random(), 0, data, 5);
        EntryCodec.SetChain(b.Span, Id160.Random(), 9, Id160.Random(), Id160.Random());
        EntryCodec.Seal(b.Span, 77);
        Assert.Equal(EntryCodec.ComputeDigest(a.Span), EntryCodec.ComputeDigest(b.Span));
        data[100] ^= 1;
        using var c = EntryCodec.BuildData(EntryKind.Data, Id160.Random(), 0, data, 5);
        Assert.NotEqual(EntryCodec.ComputeDigest(a.Span), EntryCodec.ComputeDigest(c.Span));
    }
}
