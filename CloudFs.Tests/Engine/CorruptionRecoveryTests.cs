// Crash recovery against corruption of durable data: a bad block, a bad header or a flipped bit before the last flush
// never costs a later acknowledged write; only a torn tail after the last flush is cut (docs/FORMAT.md, "Recovery").
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;

namespace CloudFs.Tests.Engine;

public sealed class CorruptionRecoveryTests
{
    private static long Find(TempLog t, byte[] needle)
    {
        var at = t.ReadAll().AsSpan().IndexOf(needle.AsSpan(0, 64));
        Assert.True(at >= 0, "pattern not found in the log");
        return at;
    }

    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    private static byte[] Filled(int length, byte value) => Enumerable.Repeat(value, length).ToArray();

    [Fact]
    public async Task A_flipped_byte_in_a_flushed_entry_costs_that_block_only_and_keeps_every_later_write()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [])).BaseId;
        var a = TempLog.Pattern(64 << 10, 1);
        var b = Filled(64 << 10, 0x3c);
        await s.WriteAsync(v, 0, a);
        var last = await s.WriteAsync(v, 1 << 20, b);
        await s.FlushAsync();
        s.CloseWithoutCheckpoint();
        // The scenario: one byte inside the first write's data, the second write after it flushed.
        var at = Find(t, a) + 8192 + 100;
        t.Poke(at, [(byte)(t.Peek(at, 1)[0] ^ 0xff)]);

        await using (var again = t.Open())
        {
            var info = again.GetVolume(v)!;
            Assert.Equal(last.Lsn, info.Lsn);
            Assert.Equal(last.Version, info.CurrentVersion);
            Assert.Equal(b, await Read(again, v, 1 << 20, 64 << 10));
            var ex = await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(again, v, 0, 64 << 10));
            Assert.Equal(8192, ex.Offset);
            Assert.Equal([new DamagedRange(8192, 512, info.Damage.Single().Reason)], info.Damage);
            // Exactly the damaged block: everything around it reads.
            Assert.Equal(a.AsSpan(0, 8192).ToArray(), await Read(again, v, 0, 8192));
            Assert.Equal(a.AsSpan(8704).ToArray(), await Read(again, v, 8704, (64 << 10) - 8704));
            // New writes go after the durable entries, never over them.
            Assert.Equal(last.Lsn + 1, (await again.WriteAsync(v, 2 << 20, TempLog.Pattern(4096, 2), durable: true)).Lsn);
            again.CloseWithoutCheckpoint();
        }
        await using var third = t.Open();
        Assert.Equal(b, await Read(third, v, 1 << 20, 64 << 10));
        Assert.Equal(TempLog.Pattern(4096, 2), await Read(third, v, 2 << 20, 4096));
        await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(third, v, 8192, 512));
    }

    [Fact]
    public async Task A_flipped_byte_in_the_newest_flushed_entry_reads_as_EIO_not_as_older_data()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(8192, 3), durable: true);
        var newest = TempLog.Pattern(8192, 4);
        var last = await s.WriteAsync(v, 0, newest, durable: true);
        s.CloseWithoutCheckpoint();
        t.FlipBit(Find(t, newest) + 512 + 7, 2);

        await using var again = t.Open();
        Assert.Equal(last.Lsn, again.GetVolume(v)!.Lsn);
        var ex = await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(again, v, 0, 8192));
        Assert.Equal(512, ex.Offset);
    }

    [Fact]
    public async Task Damage_survives_a_checkpoint_and_a_write_over_it_makes_the_range_whole()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var a = TempLog.Pattern(4096, 5);
        await s.WriteAsync(v, 0, a);
        await s.WriteAsync(v, 8192, TempLog.Pattern(4096, 6), durable: true);
        s.CloseWithoutCheckpoint();
        t.FlipBit(Find(t, a) + 1024, 0);
        await using (var again = t.Open())
        {
            Assert.True(again.GetVolume(v)!.IsDamaged);
        }
        // Reopened from the checkpoint written at close (recovery does not see the entry again): still damaged.
        await using var third = t.Open();
        Assert.True(third.LastRecovery.FromCheckpoint);
        await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(third, v, 1024, 512));
        var fresh = TempLog.Pattern(512, 7);
        await third.WriteAsync(v, 1024, fresh);
        Assert.Equal(fresh, await Read(third, v, 1024, 512));
        Assert.False(third.GetVolume(v)!.IsDamaged);
    }

    [Fact]
    public async Task One_flipped_bit_in_a_flushed_header_is_corrected_and_nothing_is_lost()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var a = TempLog.Pattern(8192, 8);
        var b = TempLog.Pattern(8192, 9);
        await s.WriteAsync(v, 0, a);
        var last = await s.WriteAsync(v, 8192, b, durable: true);
        s.CloseWithoutCheckpoint();
        var header = Find(t, a) - 512;
        t.FlipBit(header + EntryHeader.OffFirstBlock, 0);

        await using (var again = t.Open())
        {
            Assert.Equal(last.Lsn, again.GetVolume(v)!.Lsn);
            Assert.Equal(a, await Read(again, v, 0, 8192));
            Assert.Equal(b, await Read(again, v, 8192, 8192));
            Assert.False(again.GetVolume(v)!.IsDamaged);
            Assert.Contains(t.Errors, m => m.Contains("one flipped bit"));
            again.CloseWithoutCheckpoint();
        }
        // Corrected on disk too: the header verifies as it was written.
        Assert.True(EntryCodec.HeaderCrcMatches(t.Peek(header, 512)));
    }

    [Fact]
    public async Task One_flipped_bit_in_a_header_a_checkpoint_covers_is_corrected_by_scrub_and_reads_and_nothing_is_lost()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        // 64 KiB each: 128 stored blocks, so each entry has a CRC-table sector after its header sector.
        var a = TempLog.Pattern(64 << 10, 21);
        var c = TempLog.Pattern(64 << 10, 22);
        await s.WriteAsync(v, 0, a);
        await s.WriteAsync(v, 256 << 10, c, durable: true);
        await s.DisposeAsync();   // a clean close: the checkpoint covers both entries, no roll-forward walks them again
        var headerA = Find(t, a) - 1024;
        var tableC = Find(t, c) - 512;
        t.FlipBit(headerA + EntryHeader.OffFirstBlock, 3);
        t.FlipBit(tableC + 77, 5);

        await using (var again = t.Open())
        {
            Assert.DoesNotContain(t.Errors, m => m.Contains("recovery:"));   // recovery did not meet them: scrub and reads must
            var scrub = await again.Scrubber.ScrubAsync(new ScrubOptions());
            Assert.Equal(0, scrub.BadBlocks);
            Assert.Empty(scrub.Findings);
            Assert.Equal(a, await Read(again, v, 0, 64 << 10));
            Assert.Equal(c, await Read(again, v, 256 << 10, 64 << 10));
            Assert.False(again.GetVolume(v)!.IsDamaged);
            Assert.Contains(t.Errors, m => m.Contains("one flipped bit") && m.Contains("scrub"));
        }
    }

    [Fact]
    public async Task A_garbled_header_before_the_last_flush_is_skipped_and_only_its_volume_is_damaged()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var w = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var a = TempLog.Pattern(8192, 10);
        var c = TempLog.Pattern(8192, 11);
        var b = TempLog.Pattern(8192, 12);
        await s.WriteAsync(v, 0, TempLog.Pattern(8192, 13));
        await s.WriteAsync(v, 0, a);
        await s.WriteAsync(w, 0, c);
        var lastV = await s.WriteAsync(v, 65536, b);
        await s.FlushAsync();
        s.CloseWithoutCheckpoint();
        // Many bits of A's header: beyond correction.
        var header = Find(t, a) - 512;
        t.Poke(header + EntryHeader.OffVolume, TempLog.Pattern(64, 14));

        await using (var again = t.Open())
        {
            var info = again.GetVolume(v)!;
            Assert.Equal(lastV.Lsn, info.Lsn);
            Assert.Equal(lastV.Version, info.CurrentVersion);
            Assert.Equal(c, await Read(again, w, 0, 8192));
            Assert.False(again.GetVolume(w)!.IsDamaged);
            Assert.Equal(b, await Read(again, v, 65536, 8192));
            // What the lost entry wrote is unknown: the rest of the volume is not served, rather than served stale.
            await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(again, v, 0, 8192));
            Assert.Contains(info.Damage, d => d.Reason.Contains($"lsn {lastV.Lsn - 1}..{lastV.Lsn - 1} were lost"));
            Assert.Contains(t.Errors, m => m.Contains("skipped, not truncated"));
            // A stream from before the lost entry cannot be served; from after it, it can.
            Assert.Equal(lastV.Lsn, again.ReadHeaders(v, 1, long.MaxValue, 100).First().Lsn);
            await again.WriteAsync(v, 0, a, durable: true);
            Assert.Equal(a, await Read(again, v, 0, 8192));
            again.CloseWithoutCheckpoint();
        }
        await using var third = t.Open();
        Assert.Equal(c, await Read(third, w, 0, 8192));
        Assert.Equal(b, await Read(third, v, 65536, 8192));
        Assert.Equal(a, await Read(third, v, 0, 8192));
    }

    [Fact]
    public async Task A_torn_tail_with_later_sectors_on_disk_is_cut_and_the_writer_leaves_that_segment()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var a = TempLog.Pattern(8192, 15);
        var b = TempLog.Pattern(8192, 16);
        var c = TempLog.Pattern(8192, 17);
        var durable = await s.WriteAsync(v, 0, a, durable: true);
        await s.WriteAsync(v, 8192, b);
        await s.WriteAsync(v, 16384, c);
        s.CloseWithoutCheckpoint();
        // B's header never reached the disk, C's did: nothing flushed covers either.
        var bHeader = Find(t, b) - 512;
        t.Poke(bHeader, new byte[512]);

        await using var again = t.Open();
        Assert.Equal(durable.Lsn, again.GetVolume(v)!.Lsn);
        Assert.Equal(new byte[16384], await Read(again, v, 8192, 16384));
        var next = await again.DurablePositionAsync();
        var segment = again.Layout.SegmentSize;
        Assert.NotEqual((bHeader - again.Layout.FirstSegmentOffset) / segment, (next - again.Layout.FirstSegmentOffset) / segment);
    }
}
