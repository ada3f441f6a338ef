// The device layer: format on first open, pinning (second open and nuke refused), host id checks, nuke, fallbacks.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class DeviceTests
{
    [Fact]
    public void A_missing_file_is_created_sparse_and_formatted_with_direct_io()
    {
        using var t = new TempLog();
        using (var s = t.Open(size: 64 << 20))
        {
            Assert.True(s.IsDirectIo);
            Assert.Equal(64L << 20, new FileInfo(t.Path).Length);
            Assert.True(s.Usage.TotalSegments > 100);
        }
        Assert.Contains(t.Messages, m => m.Contains("formatted"));
        Assert.Equal("CLOUDFS1"u8.ToArray(), t.Peek(0, 8));
    }

    [Fact]
    public void A_file_too_small_for_a_log_is_refused_and_left_behind_only_when_it_was_there_before()
    {
        using var t = new TempLog();
        var e = Assert.Throws<DeviceException>(() => LogStore.Open(t.Options(size: 1 << 20)));
        Assert.Contains("too small", e.Message);
        Assert.False(File.Exists(t.Path), "the refused open left the file it created");

        // A file that was there before is the operator's: refused, but kept as it was.
        File.WriteAllBytes(t.Path, new byte[1 << 20]);
        Assert.Throws<DeviceException>(() => LogStore.Open(t.Options(size: 1 << 20)));
        Assert.Equal(1 << 20, new FileInfo(t.Path).Length);
    }

    [Fact]
    public void Second_open_of_a_held_device_is_refused()
    {
        using var t = new TempLog();
        using var s = t.Open();
        var ex = Assert.Throws<DeviceException>(() => LogStore.Open(t.Options()));
        Assert.Contains(t.Path, ex.Message);
        Assert.Contains("held", ex.Message);
    }

    [Fact]
    public void Nuke_is_refused_while_the_device_is_held()
    {
        using var t = new TempLog();
        Guid device;
        using (var s = t.Open())
        {
            device = s.DeviceId;
            var ex = Assert.Throws<DeviceException>(() => LogStore.Nuke(t.Path));
            Assert.Contains(t.Path, ex.Message);
            Assert.Contains("held", ex.Message);
        }
        using var again = t.Open();
        Assert.Equal(device, again.DeviceId);
    }

    [Fact]
    public void Host_id_is_kept_across_restarts_and_a_different_one_is_refused()
    {
        using var t = new TempLog();
        var host = Id160.Random();
        Guid device;
        using (var s = t.Open(host: host)) device = s.DeviceId;
        using (var s = t.Open())
        {
            Assert.Equal(host, s.HostId);
            Assert.Equal(device, s.DeviceId);
        }
        var other = Id160.Random();
        var ex = Assert.Throws<DeviceException>(() => t.Open(host: other));
        Assert.Contains($"belongs to host {host}, not {other}", ex.Message);
    }

    [Fact]
    public async Task Nuke_makes_the_next_open_format_a_new_device()
    {
        using var t = new TempLog();
        Guid before;
        await using (var s = t.Open())
        {
            before = s.DeviceId;
            await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, []);
        }
        t.ReadAll();
        LogStore.Nuke(t.Path);
        Assert.All(t.Peek(0, 4096), b => Assert.Equal(0, b));
        await using var again = t.Open();
        Assert.NotEqual(before, again.DeviceId);
        Assert.Empty(again.ListVolumes());
    }

    [Fact]
    public void A_device_with_foreign_content_is_not_formatted_over()
    {
        using var t = new TempLog();
        File.WriteAllBytes(t.Path, TempLog.Pattern(16 << 20, 1));
        var ex = Assert.Throws<DeviceException>(() => t.Open());
        Assert.Contains("nuke", ex.Message);
    }

    [Fact]
    public async Task Buffered_io_with_fdatasync_is_used_when_direct_io_is_off()
    {
        using var t = new TempLog();
        await using var s = LogStore.Open(t.Options() with { DirectIo = false });
        Assert.False(s.IsDirectIo);
        var v = await s.CreateVolumeAsync(1 << 20, VolumeMode.Sync, []);
        var data = TempLog.Pattern(4096, 5);
        await s.WriteAsync(v.BaseId, 8192, data, durable: true);
        var back = new byte[4096];
        await s.ReadAsync(v.BaseId, 8192, back);
        Assert.Equal(data, back);
    }
}
