// A scheduled compaction pass over an idle log is skipped (issue 14: at 100,000 volumes each pass looked at every volume
// every 30 s): it runs again once an entry is appended, or once the retention time releases history.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class IdleCompactionTests
{
    [Fact]
    public async Task Scheduled_passes_skip_an_idle_log_and_run_again_after_a_write()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.FromHours(1) });
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(64 << 10, 1));
        await s.CompactOnScheduleAsync();
        var passes = s.CompactionStats.Passes;
        var skipped = s.CompactionStats.PassesSkipped;
        await s.CompactOnScheduleAsync();
        await s.CompactOnScheduleAsync();
        Assert.Equal(passes, s.CompactionStats.Passes);
        Assert.Equal(skipped + 2, s.CompactionStats.PassesSkipped);

        await s.WriteAsync(v, 64 << 10, TempLog.Pattern(64 << 10, 2));
        await s.CompactOnScheduleAsync();
        Assert.Equal(passes + 1, s.CompactionStats.Passes);
        // A pass asked for outside the schedule (free space, tests) always runs.
        await s.CompactAsync();
        Assert.Equal(passes + 2, s.CompactionStats.Passes);
    }

    [Fact]
    public async Task Scheduled_passes_release_history_once_the_retention_time_has_passed_without_any_write()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.FromMilliseconds(300) });
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(1 << 20, 1));
        var old = s.GetVolume(v)!.CurrentVersion;
        await s.WriteAsync(v, 0, TempLog.Pattern(1 << 20, 2));
        // Only scheduled passes from here, and nothing written: the skipped passes must still come back when the
        // retention time releases the old version (asking whether it can be branched appends nothing).
        Assert.True(s.CanBranchFrom(old));
        await Eventually.Until(() =>
        {
            s.CompactOnScheduleAsync().GetAwaiter().GetResult();
            return !s.CanBranchFrom(old);
        }, TimeSpan.FromSeconds(10), "scheduled passes to release the old version once the retention time has passed");
    }
}
