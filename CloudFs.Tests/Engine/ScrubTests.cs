// Scrub: a flipped byte of a stored block is found (exactly that block), lands in the damage maps of the volumes that
// read it, reads agree with the map and the rest reads fine; compaction moves the good blocks but never gives a bad one
// a fresh checksum.
using CloudFs.BlockDevice;
using CloudFs.Tests.Cluster;

namespace CloudFs.Tests.Engine;

public sealed class ScrubTests
{
    private const int Size = 1 << 20;

    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    [Fact]
    public async Task Scrub_of_a_clean_log_verifies_every_live_byte_and_finds_nothing()
    {
        using var t = new TempLog();
        await using var s = t.Open();
        var v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(256 << 10, 1));
        await s.WriteAsync(v, 64 << 10, TempLog.Pattern(64 << 10, 2));   // overwrites: 256 KiB live, not 320
        await s.WriteAsync(v, 512 << 10, new byte[64 << 10]);             // zeros are not stored

        var result = await s.Scrubber.ScrubAsync(new ScrubOptions());

        Assert.Equal(256 << 10, result.BytesVerified);
        Assert.Equal(0, result.BadBlocks);
        Assert.Empty(result.Findings);
        Assert.False(s.GetVolume(v)!.IsDamaged);
        Assert.Equal(1, s.Scrubber.Stats.Passes);
        Assert.Equal(256 << 10, s.Scrubber.Stats.BytesVerified);
    }

    [Fact]
    public async Task Scrub_finds_exactly_the_flipped_block_and_reads_agree_with_the_damage_map()
    {
        using var t = new TempLog();
        var data = TempLog.Pattern(512 << 10, 3);
        Id160 v;
        long bad = 200 << 10;   // a block in the middle of an entry
        long at;
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, data);
            at = s.DeviceOffsetOf(v, bad);
        }
        t.FlipBit(at + 100, 3);
        await using (var s = t.Open())
        {
            // Nothing is known before the block is read.
            Assert.False(s.GetVolume(v)!.IsDamaged);
            var result = await s.Scrubber.ScrubAsync(new ScrubOptions());

            Assert.Equal(1, result.BadBlocks);
            var finding = Assert.Single(result.Findings);
            Assert.Equal((v, bad, 512L), (finding.Volume, finding.Offset, finding.Length));
            Assert.Contains($"log block {at / 512} fails its checksum", finding.Reason);
            var damage = Assert.Single(s.GetVolume(v)!.Damage);
            Assert.Equal((bad, 512L), (damage.Offset, damage.Length));
            Assert.Equal(finding.Reason, damage.Reason);

            // Reads that touch the block fail for exactly that block; everything else reads.
            var ex = await Assert.ThrowsAsync<DataCorruptionException>(() => Read(s, v, bad - 4096, 8192));
            Assert.Equal((bad, 512L), (ex.Offset, ex.Length));
            Assert.Equal(data.AsSpan(0, (int)bad).ToArray(), await Read(s, v, 0, (int)bad));
            Assert.Equal(data.AsSpan((int)bad + 512).ToArray(), await Read(s, v, bad + 512, data.Length - (int)bad - 512));
            Assert.Equal(1, s.Scrubber.Stats.BadBlocks);
        }
        // Kept by the checkpoint at close: a restart still knows, and a second scrub finds the same block again.
        await using (var s = t.Open())
        {
            Assert.Single(s.GetVolume(v)!.Damage);
            var again = await s.Scrubber.ScrubAsync(new ScrubOptions(Volume: v));
            var finding = Assert.Single(again.Findings);
            Assert.False(finding.IsNew);
            // A write over the block makes it whole again.
            await s.WriteAsync(v, bad, TempLog.Pattern(512, 9));
            Assert.False(s.GetVolume(v)!.IsDamaged);
            Assert.Equal(0, (await s.Scrubber.ScrubAsync(new ScrubOptions())).BadBlocks);
        }
    }

    [Fact]
    public async Task A_read_that_meets_a_bad_block_records_it_in_the_damage_map()
    {
        using var t = new TempLog();
        Id160 v;
        long at;
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, TempLog.Pattern(64 << 10, 4));
            at = s.DeviceOffsetOf(v, 8192);
        }
        t.FlipBit(at + 7);
        await using var again = t.Open();
        await Assert.ThrowsAsync<DataCorruptionException>(() => Read(again, v, 0, 64 << 10));
        var damage = Assert.Single(again.GetVolume(v)!.Damage);
        Assert.Equal((8192L, 512L), (damage.Offset, damage.Length));
    }

    [Fact]
    public async Task A_bad_block_of_a_branch_parent_is_damage_of_every_volume_that_reads_it()
    {
        using var t = new TempLog();
        Id160 v, branch;
        long at;
        var data = TempLog.Pattern(64 << 10, 5);
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, data);
            branch = (await s.BranchAsync(s.GetVolume(v)!.CurrentVersion)).BaseId;
            at = s.DeviceOffsetOf(v, 4096);
        }
        t.FlipBit(at);
        await using var again = t.Open();
        var result = await again.Scrubber.ScrubAsync(new ScrubOptions());

        Assert.Equal(1, result.BadBlocks);
        Assert.Equal(new[] { v, branch }.Order(), result.Findings.Select(f => f.Volume).Order());
        await Assert.ThrowsAsync<DataCorruptionException>(() => Read(again, branch, 4096, 512));
        // The branch writes over it: whole again there, still damaged in the volume it came from.
        await again.WriteAsync(branch, 4096, TempLog.Pattern(512, 6));
        Assert.False(again.GetVolume(branch)!.IsDamaged);
        Assert.True(again.GetVolume(v)!.IsDamaged);
        Assert.Equal(data.AsSpan(0, 4096).ToArray(), await Read(again, branch, 0, 4096));
    }

    [Fact]
    public async Task Compaction_moves_the_good_blocks_but_never_launders_a_bad_one()
    {
        using var t = new TempLog();
        Id160 v;
        long at;
        var kept = TempLog.Pattern(64 << 10, 7);
        const long bad = 16 << 10;
        await using (var s = t.Open(size: 24 << 20, segment: 256 << 10))
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            // 64 KiB stays live in the first segment, everything else there is overwritten: it qualifies for compaction.
            await s.WriteAsync(v, 0, kept);
            for (var round = 0; round < 3; round++)
                for (var off = 64 << 10; off < Size; off += 64 << 10)
                    await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, round * 100 + off / 4096));
            at = s.DeviceOffsetOf(v, bad);
        }
        t.FlipBit(at + 300, 6);
        await using (var s = t.Open(size: 24 << 20, segment: 256 << 10))
        {
            var result = await s.CompactAsync();
            Assert.True(result.BytesCopied > 0, "the good blocks of the compacted segments were not moved");

            // The bad block stayed where it was, still bad, and known as damage; its neighbours moved and read.
            Assert.Equal(at, s.DeviceOffsetOf(v, bad));
            Assert.NotEqual(at - 512, s.DeviceOffsetOf(v, bad - 512));
            var damage = Assert.Single(s.GetVolume(v)!.Damage);
            Assert.Equal((bad, 512L), (damage.Offset, damage.Length));
            await Assert.ThrowsAsync<DataCorruptionException>(() => Read(s, v, bad, 512));
            Assert.Equal(kept.AsSpan(0, (int)bad).ToArray(), await Read(s, v, 0, (int)bad));
            Assert.Equal(kept.AsSpan((int)bad + 512).ToArray(), await Read(s, v, bad + 512, kept.Length - (int)bad - 512));
            // Compacting again changes nothing about it.
            await s.CompactAsync();
            Assert.Equal(at, s.DeviceOffsetOf(v, bad));
        }
        await using (var s = t.Open(size: 24 << 20, segment: 256 << 10))
        {
            // Forgotten damage would not make it readable: the block still fails its own checksum.
            var result = await s.Scrubber.ScrubAsync(new ScrubOptions());
            Assert.Equal(1, result.BadBlocks);
            Assert.Equal(bad, Assert.Single(result.Findings).Offset);
        }
    }

    [Fact]
    public async Task A_bad_entry_header_makes_every_live_block_of_the_entry_damage()
    {
        using var t = new TempLog();
        Id160 v;
        long at;
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, TempLog.Pattern(8192, 8));
            await s.WriteAsync(v, 8192, TempLog.Pattern(8192, 9));
            at = s.DeviceOffsetOf(v, 0);
        }
        // Two bits of the header's timestamp: the header CRC fails, beyond the one-bit correction.
        t.FlipBit(at - 512 + 120, 2);
        t.FlipBit(at - 512 + 121, 5);
        await using var again = t.Open();
        var result = await again.Scrubber.ScrubAsync(new ScrubOptions());

        Assert.Equal(16, result.BadBlocks);
        var finding = Assert.Single(result.Findings);
        Assert.Equal((0L, 8192L), (finding.Offset, finding.Length));
        Assert.Contains("fails its checksum", finding.Reason);
        Assert.Equal(TempLog.Pattern(8192, 9), await Read(again, v, 8192, 8192));
    }

    [Fact]
    public async Task A_throttled_scrub_can_be_cancelled()
    {
        using var t = new TempLog();
        await using var s = t.Open(size: 24 << 20);
        var v = (await s.CreateVolumeAsync(8 << 20, VolumeMode.Async, [])).BaseId;
        for (var off = 0; off < 8 << 20; off += 1 << 20) await s.WriteAsync(v, off, TempLog.Pattern(1 << 20, off >> 20));
        using var cts = new CancellationTokenSource();
        // 64 KiB/s: the first chunk alone would take a minute.
        var scrub = s.Scrubber.ScrubAsync(new ScrubOptions(BytesPerSecond: 64 << 10), cts.Token);
        await Eventually.Until(() => s.Scrubber.Stats.Running == 1, TimeSpan.FromSeconds(10), "the scrub runs");
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scrub);
        Assert.Equal(0, s.Scrubber.Stats.Running);
        Assert.Equal(0, s.Scrubber.Stats.Passes);
    }
}
