// Volumes' reads through the page cache (LogStoreOptions.CachedReads): served without a thread hop when cached, still
// verified block by block, a bad cached copy read again from the device, and right after compaction moves a block and
// its old segment is written again.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class CachedReadTests
{
    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    [Fact]
    public async Task A_read_of_blocks_the_page_cache_holds_is_answered_on_the_callers_thread()
    {
        using var t = new TempLog();
        await using var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var data = TempLog.Pattern(8192, 3);
        await s.WriteAsync(v, 4096, data, durable: true);
        // The first read fetches the blocks (and their entry's checksums); the second finds them cached.
        Assert.Equal(data, await Read(s, v, 4096, 8192));
        var back = new byte[16384];
        var pending = s.ReadAsync(v, 0, back);
        Assert.True(pending.IsCompletedSuccessfully, "a read of cached blocks went to another thread");
        Assert.Equal(new byte[4096], back[..4096]);
        Assert.Equal(data, back[4096..12288]);
        Assert.Equal(new byte[4096], back[12288..]);
    }

    [Fact]
    public async Task A_bad_copy_in_the_page_cache_is_read_again_from_the_device_and_served_good()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var data = TempLog.Pattern(16 << 10, 4);
        await s.WriteAsync(v, 0, data, durable: true);
        device.CorruptCachedReads = true;
        Assert.Equal(data, await Read(s, v, 0, 16 << 10));
        Assert.Equal(data, await Read(s, v, 0, 16 << 10));
        Assert.True(device.CachedReads > 0, "no read went through the page cache");
        Assert.False(s.GetVolume(v)!.IsDamaged, "a bad cached copy of good blocks marked the volume damaged");
    }

    [Fact]
    public async Task A_block_changed_on_the_device_after_it_was_read_through_the_cache_reads_as_corruption()
    {
        using var t = new TempLog();
        await using var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var a = TempLog.Pattern(16 << 10, 5);
        var b = TempLog.Pattern(16 << 10, 6);
        await s.WriteAsync(v, 0, a, durable: true);
        await s.WriteAsync(v, 64 << 10, b, durable: true);
        Assert.Equal(a, await Read(s, v, 0, 16 << 10));
        HeldLogFile.FlipBit(t.Path, s.DeviceOffsetOf(v, 4096) + 3, 5);
        var ex = await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(s, v, 0, 16 << 10));
        Assert.Equal(4096, ex.Offset);
        Assert.True(s.GetVolume(v)!.IsDamaged);
        Assert.Equal(b, await Read(s, v, 64 << 10, 16 << 10));
        Assert.Equal(a.AsSpan(8192).ToArray(), await Read(s, v, 8192, 8192));
    }

    [Fact]
    public async Task A_cached_block_moved_by_compaction_reads_right_after_its_old_segment_is_written_again()
    {
        using var t = new TempLog();
        var size = 1 << 20;
        await using var s = t.Open(size: 24 << 20, segment: 256 << 10);
        var v = (await s.CreateVolumeAsync(size, VolumeMode.Async, [])).BaseId;
        // 64 KiB stays live in the first segments; everything else there is overwritten, so they are compacted.
        var kept = TempLog.Pattern(64 << 10, 1);
        await s.WriteAsync(v, 0, kept);
        for (var round = 0; round < 3; round++)
            for (var off = 64 << 10; off < size; off += 64 << 10)
                await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, round * 100 + off / 4096));
        await s.FlushAsync();
        // Read it twice: its blocks and its entry's checksums are now cached at the old place.
        Assert.Equal(kept, await Read(s, v, 0, 64 << 10));
        Assert.Equal(kept, await Read(s, v, 0, 64 << 10));
        var oldPlace = s.DeviceOffsetOf(v, 0);
        var result = await s.CompactAsync();
        Assert.True(result.SegmentsFreed > 0, "nothing was freed");
        Assert.NotEqual(oldPlace, s.DeviceOffsetOf(v, 0));
        // Write until the old place holds other bytes (its segment was reused), then read the kept blocks.
        var rewritten = false;
        for (var i = 0; i < 64 && !rewritten; i++)
        {
            for (var off = 64 << 10; off < size; off += 64 << 10)
                await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, 9000 + i * 100 + off / 4096));
            await s.FlushAsync();
            rewritten = !HeldLogFile.Read(t.Path, oldPlace, 4096).AsSpan().SequenceEqual(kept.AsSpan(0, 4096));
        }
        Assert.True(rewritten, "the old place was never written again");
        Assert.Equal(kept, await Read(s, v, 0, 64 << 10));
        Assert.False(s.GetVolume(v)!.IsDamaged);
    }

    [Fact]
    public async Task With_cached_reads_off_every_read_goes_to_the_device()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenFaulty(t.Options() with { CachedReads = false }, out var device);
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var data = TempLog.Pattern(8192, 7);
        await s.WriteAsync(v, 0, data, durable: true);
        var reads = device.Reads;
        Assert.Equal(data, await Read(s, v, 0, 8192));
        Assert.Equal(data, await Read(s, v, 0, 8192));
        Assert.Equal(0, device.CachedReads);
        Assert.True(device.Reads >= reads + 2, "the reads did not reach the device");
    }
}
