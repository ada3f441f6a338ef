// Version retention (LogStore.VersionRetention.cs, cloudfs.retention.time): versions written within the retention
// time stay branchable, readable and diffable after the volume is overwritten and compacted; past it (or while free
// space is short) they are released and refused by name, naming the oldest version still available.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class VersionRetentionTests
{
    private const int K = 1024;
    private const int Size = 1 << 20;

    /// <summary>A volume written once (the version returned), then overwritten three times whole: the repro.</summary>
    private static async Task<(Id160 Volume, Id160 Old)> OverwrittenThreeTimes(LogStore s)
    {
        var v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(Size, 1));
        var old = s.GetVolume(v)!.CurrentVersion;
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < Size; off += 64 * K)
                await s.WriteAsync(v, off, TempLog.Pattern(64 * K, round * 1000 + off / 4096 + 7));
        return (v, old);
    }

    [Fact]
    public async Task A_version_within_the_retention_time_stays_branchable_readable_and_diffable_after_compaction()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.FromHours(1) });
        var (v, old) = await OverwrittenThreeTimes(s);
        await s.CompactAsync();
        await s.CompactAsync();

        var branch = (await s.BranchAsync(old)).BaseId;
        var read = new byte[Size];
        await s.ReadAsync(branch, 0, read);
        Assert.Equal(TempLog.Pattern(Size, 1), read);
        var version = new byte[Size];
        await s.ReadVersionAsync(v, old, 0, version);
        Assert.Equal(TempLog.Pattern(Size, 1), version);
        Assert.Equal([new ChangedRange(0, Size)], (await s.Streams.ChangedBetweenAsync(v, old)).Ranges);
    }

    [Fact]
    public async Task A_version_past_the_retention_time_is_released_and_refused_naming_the_oldest_available()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.FromMilliseconds(1) });
        var (v, old) = await OverwrittenThreeTimes(s);
        var head = s.GetVolume(v)!.CurrentVersion;
        var start = DateTime.UtcNow;
        await Eventually.Until(() => DateTime.UtcNow - start > TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(5), "the retention time to pass");
        Assert.True((await s.CompactAsync()).SegmentsCompacted > 0, "nothing was compacted: the history was not released");

        var e = await Assert.ThrowsAsync<VersionCompactedException>(() => s.BranchAsync(old));
        Assert.Contains($"version {old} is no longer available", e.Message);
        Assert.Equal(head, e.OldestAvailable);
        await s.BranchAsync(head);
    }
}
