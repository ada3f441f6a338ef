// The checkpoint bound (LogStoreOptions.CheckpointBytes, cloudfs.checkpoint-bytes): what a crash replays stays within
// it however fast the log is written, with no timer asking for checkpoints, and the writer holds at the bound while a
// checkpoint's slot is still being written.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;

namespace CloudFs.Tests.Engine;

public sealed class CheckpointBoundTests
{
    private const long Bound = 1 << 20;
    private const int Chunk = 64 << 10;

    [Fact]
    public async Task A_crash_replays_at_most_the_bound_after_writes_of_many_times_it()
    {
        using var t = new TempLog();
        var s = TempLog.OpenRetrying(t.Options(size: 64 << 20) with { CheckpointBytes = Bound });
        var v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [])).BaseId;
        var expected = new byte[4 << 20];
        // 12 MiB in 16-deep waves: twelve times the bound, and no timer (the node's) to take checkpoints.
        for (var wave = 0; wave < 12; wave++)
        {
            var writes = new List<Task>();
            for (var i = 0; i < 16; i++)
            {
                var offset = (wave * 16 + i) % 64 * Chunk;
                var data = TempLog.Pattern(Chunk, wave * 16 + i);
                data.CopyTo(expected, offset);
                writes.Add(s.WriteAsync(v, offset, data).AsTask());
            }
            await Task.WhenAll(writes);
        }
        await s.WriteAsync(v, 0, expected.AsMemory(0, Chunk), durable: true);
        var highWater = s.Checkpoints.Bound.HighWater;
        s.CloseWithoutCheckpoint();

        await using var again = TempLog.OpenRetrying(t.Options(size: 64 << 20) with { CheckpointBytes = Bound });
        Assert.True(again.LastRecovery.FromCheckpoint, "no checkpoint was written: the whole log was replayed");
        // Nothing at all when the last write happened to cross the bound and its checkpoint covers the whole log.
        Assert.InRange(again.LastRecovery.BytesReplayed, 0, Bound);
        Assert.InRange(highWater, Bound / 2, Bound);
        var read = new byte[expected.Length];
        await again.ReadAsync(v, 0, read);
        Assert.Equal(expected, read);
    }

    [Fact]
    public async Task The_writer_holds_at_the_bound_until_the_checkpoint_being_written_is_durable()
    {
        using var t = new TempLog();
        using var slotHeld = new ManualResetEventSlim(false);
        using var release = new ManualResetEventSlim(false);
        var s = TempLog.OpenFaulty(t.Options(size: 64 << 20) with { CheckpointBytes = Bound }, out var device);
        var layout = s.Layout;
        device.BeforeWriteAt = offset =>
        {
            if (offset != layout.CheckpointSlotA && offset != layout.CheckpointSlotB) return;
            slotHeld.Set();
            release.Wait(TimeSpan.FromMinutes(2));
        };
        var v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [])).BaseId;
        // Two bounds' worth in flight at once: half of it starts a checkpoint, whose slot write is held.
        var writes = Enumerable.Range(0, 2 * (int)(Bound / Chunk))
            .Select(i => s.WriteAsync(v, i % 64 * Chunk, TempLog.Pattern(Chunk, i)).AsTask())
            .ToList();
        Assert.True(slotHeld.Wait(TimeSpan.FromSeconds(30)), "no checkpoint was started by the writes");
        await Eventually.Until(() => s.Checkpoints.Bound.Waits > 0, TimeSpan.FromSeconds(30), "the writer waiting at the bound");
        Assert.Contains(writes, w => !w.IsCompleted);
        Assert.InRange(s.Checkpoints.Bound.SinceDurable, 1, Bound);
        release.Set();
        await Task.WhenAll(writes);
        Assert.InRange(s.Checkpoints.Bound.HighWater, 1, Bound);
        await s.DisposeAsync();
    }

    [Fact]
    public async Task A_device_that_fails_at_the_writers_own_checkpoint_fails_the_write_and_the_store_still_closes()
    {
        using var t = new TempLog();
        var s = TempLog.OpenFaulty(t.Options(size: 64 << 20) with { CheckpointBytes = Bound }, out var device);
        var v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [])).BaseId;
        // Just under half the bound, then the device fails: the entry that crosses it starts the writer's checkpoint.
        for (var i = 0; i < 7; i++) await s.WriteAsync(v, i * Chunk, TempLog.Pattern(Chunk, i));
        Assert.InRange(s.Checkpoints.Bound.SinceCapture, 1, Bound / 2 - 1);
        device.Fail(DeviceOp.Write);
        await Assert.ThrowsAsync<DeviceException>(() => s.WriteAsync(v, 7 * Chunk, TempLog.Pattern(Chunk, 7)).AsTask());
        // The checkpoint's barrier failed with the device: nothing holds the checkpoint gate, so closing ends.
        await s.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60));
    }
}
