// Compaction: overwritten segments are reclaimed with live data copied forward, reads and reopen stay exact, the
// reclaimed history can no longer be streamed, and a crash after compaction replays relocations correctly.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class CompactionTests
{
    [Fact]
    public async Task Overwritten_segments_are_reclaimed_and_live_data_survives_reopen()
    {
        using var t = new TempLog();
        var size = 1 << 20;
        var model = new byte[size];
        Id160 v;
        Id160 firstVersion;
        await using (var s = t.Open(size: 24 << 20, segment: 256 << 10))
        {
            v = (await s.CreateVolumeAsync(size, VolumeMode.Async, [])).BaseId;
            firstVersion = s.GetVolume(v)!.CurrentVersion;
            // Fill, then overwrite most of it: the early segments become mostly dead, a few blocks stay live.
            for (var round = 0; round < 3; round++)
                for (var off = 0; off < size; off += 64 << 10)
                {
                    if (round > 0 && off % (256 << 10) == 0) continue;
                    var d = TempLog.Pattern(64 << 10, round * 1000 + off / 4096);
                    await s.WriteAsync(v, off, d);
                    d.CopyTo(model, off);
                }
            var before = s.Usage;
            var result = await s.CompactAsync();
            Assert.True(result.SegmentsCompacted > 0, "nothing was compacted");
            Assert.True(result.BytesCopied > 0, "no live data was copied");
            Assert.Equal(result.SegmentsCompacted, result.SegmentsFreed);
            Assert.True(s.Usage.FreeSegments > before.FreeSegments);
            var back = new byte[size];
            await s.ReadAsync(v, 0, back);
            Assert.Equal(model, back);
            await Assert.ThrowsAsync<VersionCompactedException>(() => s.Streams.StreamAsync(firstVersion, new MemoryStream(), false));
            // New writes reuse the freed segments.
            for (var off = 0; off < size; off += 64 << 10)
            {
                var d = TempLog.Pattern(64 << 10, 7000 + off / 4096);
                await s.WriteAsync(v, off, d);
                d.CopyTo(model, off);
            }
        }
        await using var again = t.Open(size: 24 << 20, segment: 256 << 10);
        var after = new byte[size];
        await again.ReadAsync(v, 0, after);
        Assert.Equal(model, after);
    }

    [Fact]
    public async Task A_scheduled_pass_leaves_half_dead_segments_while_the_log_is_mostly_free_and_takes_them_when_it_is_not()
    {
        // Half of each early segment is overwritten: past the 0.2 threshold, so a pass asked for takes them at once.
        static async Task<Id160> HalfDead(LogStore s)
        {
            var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            for (var off = 0; off < 1 << 20; off += 64 << 10) await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, off / 4096));
            for (var off = 0; off < 1 << 20; off += 128 << 10) await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, 500 + off / 4096));
            await s.FlushAsync();
            return v;
        }
        using (var control = new TempLog())
        {
            await using var c = control.Open(size: 24 << 20, segment: 256 << 10);
            await HalfDead(c);
            Assert.True((await c.CompactAsync()).SegmentsCompacted > 0, "a pass asked for left the half-dead segments");
        }

        using var t = new TempLog();
        await using var s = t.Open(size: 24 << 20, segment: 256 << 10);
        var v = await HalfDead(s);
        Assert.True(s.Usage.FreeSegments > s.Usage.TotalSegments * 3 / 4);
        var idle = await s.CompactOnScheduleAsync();
        Assert.Equal(0, idle.SegmentsCompacted);

        // Fill the log with live data until under a third of it is free (still above the low-water mark): now they qualify.
        var filler = (await s.CreateVolumeAsync(16 << 20, VolumeMode.Async, [])).BaseId;
        var filled = 0;
        while (s.Usage.FreeSegments > s.Usage.TotalSegments / 3)
        {
            await s.WriteAsync(filler, filled, TempLog.Pattern(256 << 10, 9000 + filled / 4096));
            filled += 256 << 10;
        }
        var busy = await s.CompactOnScheduleAsync();
        Assert.True(busy.SegmentsCompacted > 0, "a scheduled pass with the log two thirds full left half-dead segments");
        var back = new byte[64 << 10];
        await s.ReadAsync(v, 0, back);
        Assert.Equal(TempLog.Pattern(64 << 10, 500), back);
        await s.ReadAsync(v, 64 << 10, back);
        Assert.Equal(TempLog.Pattern(64 << 10, 16), back);
    }

    [Fact]
    public async Task A_read_that_looked_up_its_places_before_a_compaction_is_waited_for_before_they_are_freed()
    {
        using var t = new TempLog();
        var size = 1 << 20;
        await using var s = t.OpenFaulty(out var device, size: 24 << 20, segment: 256 << 10);
        var v = (await s.CreateVolumeAsync(size, VolumeMode.Async, [])).BaseId;
        // 64 KiB stays live in the first segments; everything else there is overwritten, so they are compacted.
        var kept = TempLog.Pattern(64 << 10, 1);
        await s.WriteAsync(v, 0, kept);
        for (var round = 0; round < 3; round++)
            for (var off = 64 << 10; off < size; off += 64 << 10)
                await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, round * 100 + off / 4096));

        // Hold the read between its index lookup and its device reads.
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var first = 0;
        device.BeforeRead = () =>
        {
            if (Interlocked.Exchange(ref first, 1) != 0) return;
            held.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        var back = new byte[64 << 10];
        Task<CompactionResult> compaction;
        Task reading;
        try
        {
            reading = s.ReadAsync(v, 0, back).AsTask();
            Assert.True(held.Wait(TimeSpan.FromSeconds(30)), "the read did not reach the device");
            Assert.Equal(1, s.ReadersInFlight);
            var epoch = s.ReadEpoch;
            compaction = s.CompactAsync();
            await Eventually.Until(() => s.ReadEpoch != epoch || compaction.IsCompleted, TimeSpan.FromSeconds(30), "the compaction at freeing segments");
            // The compaction is waiting for the held read: the segments it found its data in are not freed yet.
            Assert.False(compaction.IsCompleted, "the compaction freed segments under a read in progress");
        }
        finally
        {
            release.Set();
            device.BeforeRead = null;
        }
        await reading.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(kept, back);
        var result = await compaction.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.SegmentsFreed > 0, "nothing was freed");
        Assert.Equal(0, s.ReadersInFlight);
        var again = new byte[64 << 10];
        await s.ReadAsync(v, 0, again);
        Assert.Equal(kept, again);
    }

    [Fact]
    public async Task Relocations_are_replayed_after_a_crash_only_where_the_index_still_points_at_the_old_place()
    {
        using var t = new TempLog();
        var size = 512 << 10;
        var model = new byte[size];
        Id160 v;
        var s = t.Open(size: 24 << 20, segment: 256 << 10);
        v = (await s.CreateVolumeAsync(size, VolumeMode.Async, [])).BaseId;
        for (var round = 0; round < 4; round++)
            for (var off = 0; off < size; off += 32 << 10)
            {
                if (round > 0 && off % (128 << 10) == 0) continue;
                var d = TempLog.Pattern(32 << 10, round * 100 + off / 4096);
                await s.WriteAsync(v, off, d);
                d.CopyTo(model, off);
            }
        await s.Checkpoints.WriteAsync();
        Assert.True((await s.CompactAsync(checkpoint: false)).SegmentsCompacted > 0);
        // Overwrite some relocated data, then crash before any checkpoint: replay applies the relocations, then the overwrite.
        var late = TempLog.Pattern(4096, 99);
        await s.WriteAsync(v, 0, late, durable: true);
        late.CopyTo(model, 0);
        s.CloseWithoutCheckpoint();
        await using var again = t.Open(size: 24 << 20, segment: 256 << 10);
        Assert.True(again.LastRecovery.EntriesReplayed > 1, "no relocation entry was replayed");
        var back = new byte[size];
        await again.ReadAsync(v, 0, back);
        Assert.Equal(model, back);
    }
}
