// The engine's answer to "which volumes changed since stamp S" (what a host reports to placement): an idle log answers
// nothing, a write, a trash or a purge answers that volume only, and a reopened log answers every volume again.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class VolumeChangesTests
{
    [Fact]
    public async Task An_idle_log_reports_no_change_and_a_write_a_trash_or_a_purge_reports_that_volume_only()
    {
        using var t = new TempLog();
        var s = t.Open();
        try
        {
            var volumes = new List<Id160>();
            for (var i = 0; i < 5; i++) volumes.Add((await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId);

            var all = s.ChangesSince(0);
            Assert.Equal(volumes.Order(), all.Changed.Select(v => v.BaseId).Order());
            Assert.Empty(all.Removed);

            // Nothing happened since: nothing to report, however many volumes the log holds.
            var idle = s.ChangesSince(all.Stamp);
            Assert.Empty(idle.Changed);
            Assert.Empty(idle.Removed);

            await s.WriteAsync(volumes[2], 0, TempLog.Pattern(512, 1), durable: true);
            var written = s.ChangesSince(idle.Stamp);
            var changed = Assert.Single(written.Changed);
            Assert.Equal(volumes[2], changed.BaseId);
            Assert.Equal(2, changed.Lsn);

            await s.TrashVolumeAsync(volumes[4]);
            var trashed = s.ChangesSince(written.Stamp);
            Assert.True(Assert.Single(trashed.Changed) is { IsTrashed: true } v && v.BaseId == volumes[4]);

            await s.PurgeVolumeAsync(volumes[4]);
            var purged = s.ChangesSince(trashed.Stamp);
            Assert.Empty(purged.Changed);
            Assert.Equal(volumes[4], Assert.Single(purged.Removed));
            Assert.Empty(s.ChangesSince(purged.Stamp).Removed);
            // From 0 a purged volume is simply not there.
            Assert.DoesNotContain(volumes[4], s.ChangesSince(0).Changed.Select(x => x.BaseId));
        }
        finally
        {
            await s.DisposeAsync();
        }

        // A reopened log (a restarted host) has stamps of its own: each volume is newer than anything stamped before.
        var before = ChangeClock.Now;
        await using var again = t.Open();
        Assert.Equal(4, again.ChangesSince(before).Changed.Count);
    }
}
