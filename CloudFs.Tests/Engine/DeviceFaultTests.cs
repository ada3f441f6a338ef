// Each fault of the fault-injecting device and what the store does about it: a failed write or fdatasync fails the
// requests it was for and every later one, for good (never retried into a success), reported once as an error naming
// the device and the errno; reads of what was durable go on; after a short or torn write, a reopen finds everything
// that was flushed and no part of the broken entry.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;

namespace CloudFs.Tests.Engine;

public sealed class DeviceFaultTests
{
    private const int Eio = 5, Enospc = 28;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<Id160> VolumeWithAsync(LogStore s, byte[] data)
    {
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [])).BaseId;
        await s.WriteAsync(v, 0, data, durable: true);
        return v;
    }

    private static async Task AssertReads(LogStore s, Id160 v, long offset, byte[] expected)
    {
        var back = new byte[expected.Length];
        await s.ReadAsync(v, offset, back);
        Assert.True(expected.AsSpan().SequenceEqual(back), $"other bytes at {offset}");
    }

    private static void AssertOneErrorLine(TempLog t, string what, int errno)
    {
        var line = Assert.Single(t.Errors);
        Assert.Contains(t.Path, line);
        Assert.Contains(what, line);
        Assert.Contains($"errno {errno} ", line);
    }

    [Fact]
    public async Task A_write_the_device_fails_is_an_error_and_every_later_write_flush_and_checkpoint_fails_even_once_the_device_works_again()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var a = TempLog.Pattern(8192, 1);
        var v = await VolumeWithAsync(s, a);
        var lsn = s.GetVolume(v)!.Lsn;

        device.Fail(DeviceOp.Write);
        var e = await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 65536, TempLog.Pattern(4096, 2), durable: true).AsTask());
        Assert.Equal(Eio, e.Errno);
        Assert.Contains(t.Path, e.Message);

        device.Heal();
        var (writes, flushes) = (device.Writes, device.Flushes);
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 65536, TempLog.Pattern(4096, 3), durable: false).AsTask());
        await Assert.ThrowsAsync<DeviceException>(() => s.FlushAsync().AsTask());
        await Assert.ThrowsAsync<DeviceException>(() => s.Checkpoints.WriteAsync());
        // Refused before the device: nothing is tried again on it.
        Assert.Equal((writes, flushes), (device.Writes, device.Flushes));
        Assert.Equal(lsn, s.GetVolume(v)!.Lsn);
        Assert.False(s.IsWritable(v));
        Assert.Equal(Eio, s.DeviceFailure?.Errno);

        await AssertReads(s, v, 0, a);
        AssertOneErrorLine(t, "write of", Eio);
    }

    [Fact]
    public async Task A_write_that_fails_once_still_fails_every_request_after_it()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var a = TempLog.Pattern(4096, 1);
        var v = await VolumeWithAsync(s, a);

        device.Fail(DeviceOp.Write, once: true);
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 8192, TempLog.Pattern(4096, 2)).AsTask());
        var writes = device.Writes;
        // The device would take this write, but the log's tail is unknown after a failed write: refused.
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 8192, TempLog.Pattern(4096, 3)).AsTask());
        await Assert.ThrowsAsync<DeviceException>(() => s.CreateVolumeAsync(1 << 20, VolumeMode.Async, []));
        Assert.Equal(writes, device.Writes);
        await AssertReads(s, v, 0, a);
        AssertOneErrorLine(t, "write of", Eio);
    }

    [Fact]
    public async Task A_failed_fdatasync_fails_the_durable_write_it_was_for_and_is_never_tried_again()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var a = TempLog.Pattern(8192, 1);
        var v = await VolumeWithAsync(s, a);
        var lsn = s.GetVolume(v)!.Lsn;

        device.Fail(DeviceOp.Flush, once: true);
        var e = await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 65536, TempLog.Pattern(4096, 2), durable: true).AsTask());
        Assert.Equal(Eio, e.Errno);
        Assert.Contains("fdatasync", e.Message);
        // Written but not durable: not acknowledged, not in the volume.
        Assert.Equal(lsn, s.GetVolume(v)!.Lsn);

        // A second fdatasync could succeed after the kernel dropped the pages it failed to write: it is never issued.
        var flushes = device.Flushes;
        await Assert.ThrowsAsync<DeviceException>(() => s.FlushAsync().AsTask());
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 65536, TempLog.Pattern(4096, 3), durable: true).AsTask());
        Assert.Equal(flushes, device.Flushes);

        await AssertReads(s, v, 0, a);
        AssertOneErrorLine(t, "fdatasync", Eio);
    }

    [Fact]
    public async Task A_flush_request_fails_when_its_fdatasync_fails()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var v = await VolumeWithAsync(s, TempLog.Pattern(4096, 1));
        // A plain write is acknowledged once written; the flush after it is what makes it durable, and it fails.
        await s.WriteAsync(v, 8192, TempLog.Pattern(4096, 2), durable: false);
        device.Fail(DeviceOp.Flush);
        var e = await Assert.ThrowsAsync<DeviceException>(() => s.FlushAsync().AsTask());
        Assert.Equal(Eio, e.Errno);
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 16384, TempLog.Pattern(4096, 3), durable: false).AsTask());
        AssertOneErrorLine(t, "fdatasync", Eio);
    }

    [Fact]
    public async Task A_flush_that_finds_the_log_idle_syncs_on_the_callers_thread_and_a_failure_there_fails_it_and_every_request_after_it()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var v = await VolumeWithAsync(s, TempLog.Pattern(4096, 1));
        await s.WriteAsync(v, 8192, TempLog.Pattern(4096, 2), durable: false);
        var syncedOn = -1;
        device.BeforeFlush = () => syncedOn = Environment.CurrentManagedThreadId;

        // Idle (the write is written and completed, and the writer went back to waiting, which may take it a moment
        // after the write's completion): the sync runs right here, no log thread woken for it.
        await Eventually.Until(async () =>
        {
            var flushes = device.Flushes;
            var flush = s.FlushAsync(onCallerIfIdle: true);
            var here = flush.IsCompletedSuccessfully && syncedOn == Environment.CurrentManagedThreadId && device.Flushes == flushes + 1;
            await flush;
            return here;
        }, Timeout, "a flush that syncs on its caller's thread once the log is idle");

        // Still idle: this one fails on the caller's thread too.
        device.Fail(DeviceOp.Flush);
        var e = await Assert.ThrowsAsync<DeviceException>(() => s.FlushAsync(onCallerIfIdle: true).AsTask());
        Assert.Equal(Eio, e.Errno);
        // As after a failed sync on the log's own thread: never tried again, and nothing more is taken.
        var failed = device.Flushes;
        await Assert.ThrowsAsync<DeviceException>(() => s.FlushAsync(onCallerIfIdle: true).AsTask());
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 16384, TempLog.Pattern(4096, 4), durable: false).AsTask());
        Assert.Equal(failed, device.Flushes);
        Assert.False(s.IsWritable(v));
        AssertOneErrorLine(t, "fdatasync", Eio);
    }

    [Fact]
    public async Task A_flush_while_a_write_is_in_flight_waits_for_it_and_covers_it()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var v = await VolumeWithAsync(s, TempLog.Pattern(4096, 1));
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var hold = 1;
        device.BeforeWrite = () =>
        {
            if (Interlocked.Exchange(ref hold, 0) == 0) return;
            held.Set();
            release.Wait(Timeout);
        };
        var write = s.WriteAsync(v, 8192, TempLog.Pattern(4096, 2), durable: false).AsTask();
        Assert.True(held.Wait(Timeout), "the write never reached the device");
        var flushes = device.Flushes;
        // The log is busy: the flush queues behind the write instead of syncing here, before the write is on the device.
        var flush = s.FlushAsync(onCallerIfIdle: true).AsTask();
        Assert.False(flush.IsCompleted);
        Assert.Equal(flushes, device.Flushes);
        release.Set();
        await write.WaitAsync(Timeout);
        await flush.WaitAsync(Timeout);
        Assert.Equal(flushes + 1, device.Flushes);
        await AssertReads(s, v, 8192, TempLog.Pattern(4096, 2));
    }

    [Fact]
    public async Task Every_request_queued_behind_a_failed_write_fails_and_none_is_applied()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var v = await VolumeWithAsync(s, TempLog.Pattern(4096, 1));
        var lsn = s.GetVolume(v)!.Lsn;

        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var first = 0;
        device.BeforeWrite = () =>
        {
            if (Interlocked.Exchange(ref first, 1) != 0) return;
            held.Set();
            release.Wait(Timeout);
        };
        Task[] requests;
        try
        {
            var w1 = s.WriteAsync(v, 8192, TempLog.Pattern(4096, 2)).AsTask();
            Assert.True(held.Wait(Timeout), "the writer never reached the device");
            // Queued while the writer is in w1's write: they follow it in the log.
            requests =
            [
                w1,
                s.WriteAsync(v, 16384, TempLog.Pattern(4096, 3), durable: true).AsTask(),
                s.WriteZeroesAsync(v, 0, 4096).AsTask(),
                s.FlushAsync().AsTask(),
            ];
            device.Fail(DeviceOp.Write, once: true);
        }
        finally
        {
            release.Set();
        }
        foreach (var r in requests) await Assert.ThrowsAsync<DeviceException>(() => r.WaitAsync(Timeout));
        Assert.Equal(lsn, s.GetVolume(v)!.Lsn);
        Assert.Single(t.Errors);
    }

    [Fact]
    public async Task Only_a_write_that_covers_the_failing_offset_fails_and_the_writes_before_it_stay_acknowledged()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var a = TempLog.Pattern(4096, 1);
        var v = await VolumeWithAsync(s, a);
        var at = await s.DurablePositionAsync() + (64 << 10);
        device.Fail(DeviceOp.Write, at: at);
        var small = TempLog.Pattern(512, 2);
        await s.WriteAsync(v, 8192, small, durable: true);
        var lsn = s.GetVolume(v)!.Lsn;
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 65536, TempLog.Pattern(128 << 10, 3), durable: true).AsTask());
        Assert.Equal(lsn, s.GetVolume(v)!.Lsn);
        await AssertReads(s, v, 0, a);
        await AssertReads(s, v, 8192, small);
    }

    [Fact]
    public async Task A_read_error_fails_that_read_only_and_the_log_keeps_working()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [])).BaseId;
        var before = await s.DurablePositionAsync();
        await s.WriteAsync(v, 0, TempLog.Pattern(64 << 10, 1), durable: true);
        var after = await s.DurablePositionAsync();
        var b = TempLog.Pattern(4096, 2);
        await s.WriteAsync(v, 512 << 10, b, durable: true);

        device.Fail(DeviceOp.Read, at: (before + after) / 2);
        var e = await Assert.ThrowsAsync<DeviceException>(() => s.ReadAsync(v, 0, new byte[64 << 10]).AsTask());
        Assert.Equal(Eio, e.Errno);
        await AssertReads(s, v, 512 << 10, b);
        var c = TempLog.Pattern(4096, 3);
        await s.WriteAsync(v, 768 << 10, c, durable: true);
        await AssertReads(s, v, 768 << 10, c);
        Assert.Null(s.DeviceFailure);
        Assert.Empty(t.Errors);
    }

    [Fact]
    public async Task A_failed_checkpoint_write_fails_the_log_too()
    {
        using var t = new TempLog();
        await using var s = t.OpenFaulty(out var device);
        var v = await VolumeWithAsync(s, TempLog.Pattern(4096, 1));
        device.Fail(DeviceOp.Write, once: true, at: s.Layout.CheckpointSlotA);
        device.Fail(DeviceOp.Write, once: true, at: s.Layout.CheckpointSlotB);
        await Assert.ThrowsAsync<DeviceException>(() => s.Checkpoints.WriteAsync());
        // Whoever met the failure, the log's own writer never writes or syncs again.
        var (writes, flushes) = (device.Writes, device.Flushes);
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 8192, TempLog.Pattern(4096, 2), durable: true).AsTask());
        Assert.Equal((writes, flushes), (device.Writes, device.Flushes));
        AssertOneErrorLine(t, "write of", Eio);
    }

    [Fact]
    public async Task After_a_short_write_and_a_reopen_everything_flushed_before_is_there_and_nothing_of_the_short_entry()
    {
        using var t = new TempLog();
        var a = TempLog.Pattern(8192, 1);
        Id160 v;
        long lsn;
        await using (var s = t.OpenFaulty(out var device))
        {
            v = await VolumeWithAsync(s, a);
            lsn = s.GetVolume(v)!.Lsn;
            device.ShortWrite(12 * FaultyDevice.Sector);
            var e = await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 65536, TempLog.Pattern(65536, 2), durable: true).AsTask());
            Assert.Equal(Enospc, e.Errno);
            AssertOneErrorLine(t, "write of", Enospc);
        }
        await using var again = t.Open();
        Assert.Equal(lsn, again.GetVolume(v)!.Lsn);
        await AssertReads(again, v, 0, a);
        await AssertReads(again, v, 65536, new byte[65536]);
        Assert.True(again.IsWritable(v));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(70)]
    [InlineData(137)]
    [InlineData(100_000)]
    public async Task After_a_write_torn_at_any_sector_and_a_reopen_the_flushed_data_is_there_and_the_torn_entry_is_whole_or_absent(int sectors)
    {
        using var t = new TempLog();
        var a = TempLog.Pattern(8192, 1);
        var b = TempLog.Pattern(65536, 2);
        Id160 v;
        long lsn;
        await using (var s = t.OpenFaulty(out var device))
        {
            v = await VolumeWithAsync(s, a);
            lsn = s.GetVolume(v)!.Lsn;
            device.TearNextWrite(sectors, minBytes: b.Length);
            await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 65536, b, durable: true).AsTask());
            Assert.Equal(lsn, s.GetVolume(v)!.Lsn);
        }
        await using var again = t.Open();
        // The torn part is after the last flush: the roll-forward stops at it, or finds the entry whole if all of it landed.
        var recovered = again.GetVolume(v)!.Lsn;
        Assert.True(recovered == lsn || recovered == lsn + 1, $"lsn {recovered} after the reopen, {lsn} before the torn write");
        await AssertReads(again, v, 0, a);
        await AssertReads(again, v, 65536, recovered == lsn ? new byte[65536] : b);
        // The entry is 130 sectors and more: one that landed in part is never taken; one that landed whole is.
        if (sectors < 130) Assert.Equal(lsn, recovered);
        if (sectors >= 100_000) Assert.Equal(lsn + 1, recovered);
    }
}
