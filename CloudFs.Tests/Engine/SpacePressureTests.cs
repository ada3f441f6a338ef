// A write that fits never fails for space: free space starts compaction by itself, a reserve of segments keeps it able
// to copy live data, writes that would need the reserve wait for it, and only a log full of live data answers
// LogFullException (once the bounded wait ends, never a hang).
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class SpacePressureTests
{
    // 48 segments of 1 MiB after the header and the two 4 MiB checkpoint slots.
    private const long LogSize = 57 << 20;
    private const int Segment = 1 << 20;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Overwriting_a_quarter_of_the_log_again_and_again_never_fails_and_reads_back_the_last_pass()
    {
        using var t = new TempLog();
        var options = t.Options(size: LogSize, segment: Segment);
        const int volumeSize = 12 << 20;
        const int write = 1 << 20;
        const int passes = 8;
        Id160 v;
        await using (var s = TempLog.OpenRetrying(options))
        {
            Assert.Equal(48, s.Usage.TotalSegments);
            v = (await s.CreateVolumeAsync(volumeSize, VolumeMode.Async, [])).BaseId;
            for (var pass = 0; pass < passes; pass++)
            {
                // Eight writes in flight, as fio --iodepth=8 keeps them; nothing but the engine itself runs compaction.
                var inFlight = new List<Task>();
                for (var off = 0; off < volumeSize; off += write)
                {
                    if (inFlight.Count == 8)
                    {
                        var done = await Task.WhenAny(inFlight).WaitAsync(Bound);
                        inFlight.Remove(done);
                        await done;
                    }
                    inFlight.Add(s.WriteAsync(v, off, Data(pass, off, write)).AsTask());
                }
                await Task.WhenAll(inFlight).WaitAsync(Bound);
            }
            Assert.True(s.CompactionStats.SegmentsFreed > 0, "compaction never freed a segment");
            await AssertHoldsPass(s, v, passes - 1, volumeSize, write);
        }
        await using var again = TempLog.OpenRetrying(options);
        await AssertHoldsPass(again, v, passes - 1, volumeSize, write);
    }

    [Fact]
    public async Task Random_overwrites_of_a_quarter_of_the_log_never_fail_and_read_back_while_compaction_copies_live_data()
    {
        using var t = new TempLog();
        var options = t.Options(size: LogSize, segment: Segment);
        const int volumeSize = 12 << 20;
        const int write = 64 << 10;
        var model = new byte[volumeSize];
        var random = new Random(11);
        Id160 v;
        await using (var s = TempLog.OpenRetrying(options))
        {
            v = (await s.CreateVolumeAsync(volumeSize, VolumeMode.Async, [])).BaseId;
            var inFlight = new List<Task>();
            // Six times the volume in random places: every segment keeps some live data, so compaction must copy it
            // (through the same writer the waiting writes wait in).
            for (var i = 0; i < 6 * volumeSize / write; i++)
            {
                if (inFlight.Count == 8)
                {
                    var done = await Task.WhenAny(inFlight).WaitAsync(Bound);
                    inFlight.Remove(done);
                    await done;
                }
                var off = random.Next(volumeSize / write) * write;
                var d = Data(i, off, write);
                d.CopyTo(model, off);
                inFlight.Add(s.WriteAsync(v, off, d).AsTask());
            }
            await Task.WhenAll(inFlight).WaitAsync(Bound);
            Assert.True(s.CompactionStats.BytesCopied > 0, "compaction never copied live data");
            var back = new byte[volumeSize];
            await s.ReadAsync(v, 0, back);
            Assert.True(model.AsSpan().SequenceEqual(back), "the volume does not read back as written");
        }
        await using var again = TempLog.OpenRetrying(options);
        var after = new byte[volumeSize];
        await again.ReadAsync(v, 0, after);
        Assert.True(model.AsSpan().SequenceEqual(after), "the volume does not read back as written after reopening");
    }

    [Fact]
    public async Task A_log_full_of_live_data_answers_LogFullException_and_keeps_what_it_holds()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options(size: LogSize, segment: Segment));
        var v = (await s.CreateVolumeAsync(64 << 20, VolumeMode.Async, [])).BaseId;
        var written = new List<long>();
        LogFullException? full = null;
        // Every write goes to a new place: nothing ever dies, so compaction can free nothing.
        for (var off = 0L; off < 64 << 20 && full is null; off += 256 << 10)
        {
            try
            {
                await s.WriteAsync(v, off, Data(0, off, 256 << 10)).AsTask().WaitAsync(Bound);
                written.Add(off);
            }
            catch (LogFullException e) { full = e; }
        }
        Assert.NotNull(full);
        Assert.Contains("compaction", full!.Message);
        Assert.Equal(s.CompactionStats.ReserveSegments, s.Usage.FreeSegments);
        Assert.True(s.CompactionStats.AppendsRefused > 0);
        Assert.Equal(0, s.CompactionStats.AppendsWaiting);
        foreach (var off in written)
        {
            var back = new byte[256 << 10];
            await s.ReadAsync(v, off, back);
            Assert.Equal(Data(0, off, 256 << 10), back);
        }
    }

    [Fact]
    public async Task Without_compaction_a_write_that_needs_the_reserve_fails_with_LogFullException_when_its_wait_ends()
    {
        using var t = new TempLog();
        var options = t.Options(size: LogSize, segment: Segment) with { AutoCompaction = false, SpaceWaitLimit = TimeSpan.FromMilliseconds(200) };
        await using var s = TempLog.OpenRetrying(options);
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        LogFullException? full = null;
        // Overwrites: the log fills with dead data that nothing compacts.
        for (var i = 0; i < 1000 && full is null; i++)
        {
            try { await s.WriteAsync(v, 0, Data(i, 0, 256 << 10)).AsTask().WaitAsync(Bound); }
            catch (LogFullException e) { full = e; }
        }
        Assert.NotNull(full);
        Assert.Contains("within", full!.Message);
        Assert.True(s.CompactionStats.AppendsWaited > 0, "the write did not wait for room");
        Assert.Equal(0, s.CompactionStats.AppendsWaiting);
        // Asked for, compaction frees the dead segments and writes go in again.
        Assert.True((await s.CompactAsync()).SegmentsFreed > 0);
        await s.WriteAsync(v, 0, Data(-1, 0, 256 << 10)).AsTask().WaitAsync(Bound);
    }

    [Fact]
    public async Task A_write_that_finds_only_the_reserve_waits_for_compaction_and_a_flush_behind_it_waits_too()
    {
        using var t = new TempLog();
        var options = t.Options(size: LogSize, segment: Segment) with { AutoCompaction = false, SpaceWaitLimit = TimeSpan.FromMinutes(5) };
        await using var s = TempLog.OpenRetrying(options);
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        Task? waiting = null;
        var last = -1;
        for (var i = 0; i < 1000 && waiting is null; i++)
        {
            var w = s.WriteAsync(v, 0, Data(i, 0, 256 << 10)).AsTask();
            await Eventually.Until(() => w.IsCompleted || s.CompactionStats.AppendsWaiting > 0, Bound, "a write completed or waiting");
            if (w.IsCompleted) { await w; continue; }
            waiting = w;
            last = i;
        }
        Assert.NotNull(waiting);
        var flush = s.FlushAsync().AsTask();
        Assert.False(flush.IsCompleted, "a flush went past the write it was queued behind");
        Assert.False(waiting!.IsCompleted);

        var result = await s.CompactAsync().WaitAsync(Bound);
        Assert.True(result.SegmentsFreed > 0);
        await waiting.WaitAsync(Bound);
        await flush.WaitAsync(Bound);
        var back = new byte[256 << 10];
        await s.ReadAsync(v, 0, back);
        Assert.Equal(Data(last, 0, 256 << 10), back);
    }

    [Fact]
    public async Task Compaction_copies_live_data_into_the_reserve_when_writes_already_see_the_log_full()
    {
        using var t = new TempLog();
        var options = t.Options(size: LogSize, segment: Segment) with { AutoCompaction = false, SpaceWaitLimit = TimeSpan.Zero };
        await using var s = TempLog.OpenRetrying(options);
        var keep = (await s.CreateVolumeAsync(16 << 20, VolumeMode.Async, [])).BaseId;
        var churn = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        // Every segment gets a little data that stays live (keep) among data that is overwritten (churn): no segment is
        // ever wholly dead, so freeing any needs live data copied somewhere.
        var kept = 0;
        var full = false;
        for (var i = 0; !full; i++)
        {
            try
            {
                await s.WriteAsync(churn, (i % 16) * (64L << 10), Data(i, 0, 64 << 10)).AsTask().WaitAsync(Bound);
                await s.WriteAsync(keep, kept * 4096L, Data(-1, kept * 4096L, 4096)).AsTask().WaitAsync(Bound);
                kept++;
            }
            catch (LogFullException) { full = true; }
            Assert.True(kept < 4096, "the log never filled");
        }
        Assert.Equal(s.CompactionStats.ReserveSegments, s.Usage.FreeSegments);

        var result = await s.CompactAsync().WaitAsync(Bound);
        Assert.True(result.BytesCopied > 0, "no live data was copied");
        Assert.True(result.SegmentsFreed > result.BytesCopied / Segment + 1, $"compaction freed {result.SegmentsFreed} segment(s) for {result.BytesCopied} bytes copied");
        for (var k = 0; k < kept; k++)
        {
            var back = new byte[4096];
            await s.ReadAsync(keep, k * 4096L, back);
            Assert.Equal(Data(-1, k * 4096L, 4096), back);
        }
        await s.WriteAsync(churn, 0, Data(-2, 0, 64 << 10)).AsTask().WaitAsync(Bound);
    }

    private static byte[] Data(int pass, long offset, int length) => TempLog.Pattern(length, pass * 100_003 + (int)(offset / 512));

    private static async Task AssertHoldsPass(LogStore s, Id160 v, int pass, int volumeSize, int write)
    {
        var back = new byte[write];
        for (var off = 0; off < volumeSize; off += write)
        {
            await s.ReadAsync(v, off, back);
            Assert.True(Data(pass, off, write).AsSpan().SequenceEqual(back), $"bytes {off}.. do not hold pass {pass}");
        }
    }
}
