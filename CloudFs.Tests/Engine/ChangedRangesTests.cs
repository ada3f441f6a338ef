// The ranges changed between versions (LogStore.ChangedBetweenAsync): a volume written in three rounds, the same after
// a restart (from the entries' headers), and the refusals: unknown versions, versions of another volume, history
// compacted away (naming the version asked for and the oldest still available).
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class ChangedRangesTests
{
    private const int K = 1024;

    [Fact]
    public async Task Three_rounds_report_exactly_what_each_round_wrote_also_after_a_restart()
    {
        using var t = new TempLog();
        var s = t.Open(size: 16 << 20);
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(64 * K, 1));
        var v1 = s.GetVolume(v)!.CurrentVersion;
        await s.WriteAsync(v, 128 * K, TempLog.Pattern(8 * K, 2));
        await s.WriteZeroesAsync(v, 136 * K, 8 * K);
        await s.WriteAsync(v, 512 * K, TempLog.Pattern(4 * K, 3));
        var v2 = s.GetVolume(v)!.CurrentVersion;
        await s.WriteAsync(v, 60 * K, TempLog.Pattern(8 * K, 4));
        var v3 = s.GetVolume(v)!.CurrentVersion;

        async Task Check(LogStore store)
        {
            // From the volume's first version (its id): everything written, merged.
            Assert.Equal([new ChangedRange(0, 68 * K), new(128 * K, 16 * K), new(512 * K, 4 * K)], (await store.Streams.ChangedBetweenAsync(v, v)).Ranges);
            Assert.Equal([new ChangedRange(128 * K, 16 * K), new(512 * K, 4 * K)], (await store.Streams.ChangedBetweenAsync(v, v1, v2)).Ranges);
            var since2 = await store.Streams.ChangedBetweenAsync(v, v2);
            Assert.Equal([new ChangedRange(60 * K, 8 * K)], since2.Ranges);
            Assert.Equal(8 * K, since2.Bytes);
            Assert.Equal(v3, since2.To);
            Assert.Empty((await store.Streams.ChangedBetweenAsync(v, v3)).Ranges);
            // From a later version to an earlier one: the same ranges (what differs between them).
            Assert.Equal((await store.Streams.ChangedBetweenAsync(v, v1, v3)).Ranges, (await store.Streams.ChangedBetweenAsync(v, v3, v1)).Ranges);
        }
        await Check(s);
        await s.DisposeAsync();
        s = t.Open(size: 16 << 20);
        await Check(s);
        await s.DisposeAsync();
    }

    [Fact]
    public async Task A_branch_reports_its_own_writes_and_the_parents_since_a_parent_version()
    {
        using var t = new TempLog();
        await using var s = t.Open(size: 16 << 20);
        var a = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(a, 0, TempLog.Pattern(4 * K, 1));
        var a1 = s.GetVolume(a)!.CurrentVersion;
        await s.WriteAsync(a, 100 * K, TempLog.Pattern(4 * K, 2));
        var a2 = s.GetVolume(a)!.CurrentVersion;
        await s.WriteAsync(a, 200 * K, TempLog.Pattern(4 * K, 3));
        var a3 = s.GetVolume(a)!.CurrentVersion;
        var b = (await s.BranchAsync(a2)).BaseId;
        await s.WriteAsync(b, 300 * K, TempLog.Pattern(4 * K, 4));

        Assert.Equal([new ChangedRange(100 * K, 4 * K), new(300 * K, 4 * K)], (await s.Streams.ChangedBetweenAsync(b, a1)).Ranges);
        Assert.Equal([new ChangedRange(300 * K, 4 * K)], (await s.Streams.ChangedBetweenAsync(b, a2)).Ranges);
        // A parent version after the branch point: what the parent wrote since, and what the branch wrote.
        Assert.Equal([new ChangedRange(200 * K, 4 * K), new(300 * K, 4 * K)], (await s.Streams.ChangedBetweenAsync(b, a3)).Ranges);
        // The parent does not have the branch in its history.
        var e = await Assert.ThrowsAsync<InvalidRangeException>(() => s.Streams.ChangedBetweenAsync(a, b));
        Assert.Contains(b.ToString(), e.Message);
    }

    [Fact]
    public async Task An_unknown_version_is_refused_naming_it()
    {
        using var t = new TempLog();
        await using var s = t.Open(size: 16 << 20);
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var nowhere = Id160.Random();
        var e = await Assert.ThrowsAsync<UnknownVersionException>(() => s.Streams.ChangedBetweenAsync(v, nowhere));
        Assert.Contains(nowhere.ToString(), e.Message);
    }

    [Fact]
    public async Task A_version_whose_history_was_compacted_away_is_refused_naming_it_and_the_oldest_still_available()
    {
        using var t = new TempLog();
        var size = 1 << 20;
        await using var s = t.Open(size: 24 << 20, segment: 256 << 10);
        var v = (await s.CreateVolumeAsync(size, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(4 * K, 1));
        var old = s.GetVolume(v)!.CurrentVersion;
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < size; off += 64 * K)
                await s.WriteAsync(v, off, TempLog.Pattern(64 * K, round * 1000 + off / 4096));
        Assert.True((await s.CompactAsync()).SegmentsCompacted > 0, "nothing was compacted");

        var e = await Assert.ThrowsAsync<VersionCompactedException>(() => s.Streams.ChangedBetweenAsync(v, old));
        Assert.Contains(old.ToString(), e.Message);
        var oldest = Assert.NotNull(e.OldestAvailable);
        Assert.Contains(oldest.ToString(), e.Message);
        // The oldest version it names diffs.
        await s.Streams.ChangedBetweenAsync(v, oldest);
    }

    [Fact]
    public async Task Branching_a_version_whose_history_was_compacted_away_names_that_version_and_the_oldest_branchable()
    {
        using var t = new TempLog();
        var size = 1 << 20;
        await using var s = t.Open(size: 24 << 20, segment: 256 << 10);
        var v = (await s.CreateVolumeAsync(size, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(4 * K, 1));
        var old = s.GetVolume(v)!.CurrentVersion;
        // The repro: the volume overwritten three times, then compaction.
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < size; off += 64 * K)
                await s.WriteAsync(v, off, TempLog.Pattern(64 * K, round * 1000 + off / 4096));
        Assert.True((await s.CompactAsync()).SegmentsCompacted > 0, "nothing was compacted");

        var e = await Assert.ThrowsAsync<VersionCompactedException>(() => s.BranchAsync(old));
        Assert.Contains($"version {old} is no longer available", e.Message);
        var oldest = Assert.NotNull(e.OldestAvailable);
        Assert.Contains(oldest.ToString(), e.Message);
        await s.BranchAsync(oldest);
    }
}
