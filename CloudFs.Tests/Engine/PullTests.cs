// Pulling a volume's entries in bounded runs (how replicas are fed): byte for byte the volume's stream, and on the
// writer of a replicated volume the entries appended since the first pull come from memory, not the device.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;
using Microsoft.Win32.SafeHandles;

namespace CloudFs.Tests.Engine;

public sealed class PullTests
{
    private static async Task<byte[]> StreamBytes(LogStore s, Id160 v, long afterLsn)
    {
        var ms = new MemoryStream();
        await s.Streams.StreamAsync(v, afterLsn, ms, follow: false);
        return ms.ToArray();
    }

    /// <summary>Overwrites, on the device under the running store, the first 512 bytes of every place holding <paramref name="block"/>.</summary>
    private static int Garble(string path, byte[] block)
    {
        // Plain open(2): .NET's FileStream would take a flock, which the running store's exclusive lock refuses.
        var fd = NativeMethods.Open(path, NativeMethods.O_RDWR | NativeMethods.O_CLOEXEC, 0);
        Assert.True(fd >= 0, $"cannot open {path}");
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        var image = new byte[RandomAccess.GetLength(handle)];
        RandomAccess.Read(handle, image, 0);
        var found = 0;
        for (var at = image.AsSpan().IndexOf(block.AsSpan(0, 512)); at >= 0;)
        {
            RandomAccess.Write(handle, Enumerable.Repeat((byte)0xA5, 512).ToArray(), at);
            found++;
            var next = image.AsSpan(at + 512).IndexOf(block.AsSpan(0, 512));
            at = next < 0 ? -1 : at + 512 + next;
        }
        return found;
    }

    [Fact]
    public async Task A_replicas_feed_gets_an_entry_as_soon_as_it_is_placed_while_the_writers_own_write_is_still_held()
    {
        using var t = new TempLog();
        await using var a = t.OpenFaulty(out var device);
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [a.HostId, Id160.Random()])).BaseId;
        Assert.Equal(1, a.Streams.ReadEntries(v, 0, 1 << 20).LastLsn);   // a replica subscribed: the writer keeps copies

        using var hold = new ManualResetEventSlim(false);
        using var held = new ManualResetEventSlim(false);
        device.BeforeWrite = () => { held.Set(); hold.Wait(TimeSpan.FromSeconds(30)); };
        var data = TempLog.Pattern(4096, 7);
        var write = a.WriteAsync(v, 8192, data, durable: false).AsTask();
        try
        {
            Assert.True(held.Wait(TimeSpan.FromSeconds(10)), "the writer never reached the device");
            Assert.True(await a.Streams.WaitForEntryAsync(v, 1, TimeSpan.FromSeconds(10)), "the placed entry was not signalled");
            // Not written yet: the head has not moved and a plain read of the entries has nothing new ...
            Assert.Equal(1, a.GetVolume(v)!.Lsn);
            Assert.Equal(2, a.Streams.PlacedLsn(v));
            Assert.Equal(0, a.Streams.ReadEntries(v, 1, 1 << 20).Data.Length);
            Assert.False(await a.Streams.WaitForHeadAsync(v, 2, TimeSpan.FromMilliseconds(50)));
            // ... but the feed has it, byte for byte what the stream will hold once it is written.
            var early = a.Streams.ReadEntries(v, 1, 1 << 20, unwritten: true);
            Assert.Equal(2, early.LastLsn);
            Assert.False(write.IsCompleted);

            hold.Set();
            await write;
            Assert.True(await a.Streams.WaitForHeadAsync(v, 2, TimeSpan.FromSeconds(10)));
            Assert.Equal(await StreamBytes(a, v, 1), early.Data.ToArray());
            // Nothing beyond what was placed: a follower further on is refused.
            Assert.Throws<InvalidRangeException>(() => a.Streams.ReadEntries(v, 3, 1 << 20, unwritten: true));
        }
        finally
        {
            device.BeforeWrite = null;
            hold.Set();
        }
    }

    [Fact]
    public async Task A_replicated_volumes_writer_serves_entries_appended_after_the_first_pull_from_memory()
    {
        using var t = new TempLog();
        await using var a = t.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [a.HostId, Id160.Random()])).BaseId;
        var first = a.Streams.ReadEntries(v, 0, 1 << 20);
        Assert.Equal(1, first.LastLsn);
        Assert.Equal((0, 1), (a.Streams.Reads.EntriesFromMemory, a.Streams.Reads.EntriesFromDevice));   // the creation entry: from the device

        var blocks = Enumerable.Range(0, 20).Select(i => TempLog.Pattern(4096, 100 + i)).ToArray();
        for (var i = 0; i < blocks.Length; i++) await a.WriteAsync(v, i * 4096L, blocks[i], durable: true);
        var expected = await StreamBytes(a, v, 1);
        // A stream of a volume no one follows reads from the device (GET /stream keeps no copies).
        Assert.Equal((0, 21), (a.Streams.Reads.EntriesFromMemory, a.Streams.Reads.EntriesFromDevice));

        // In bounded runs of whole entries, byte for byte the stream.
        var pulled = new MemoryStream();
        for (long after = 1; after < 21;)
        {
            var run = a.Streams.ReadEntries(v, after, 20_000);
            Assert.True(run.Data.Length <= 20_000 || run.LastLsn == after + 1, "a run beyond its bound holds more than one entry");
            Assert.Equal(21, run.HeadLsn);
            pulled.Write(run.Data.Span);
            after = run.LastLsn;
        }
        Assert.Equal(expected, pulled.ToArray());
        Assert.Equal((20, 21), (a.Streams.Reads.EntriesFromMemory, a.Streams.Reads.EntriesFromDevice));

        // The device copies of those entries are now garbled: the device no longer serves them, the writer's memory does.
        foreach (var b in blocks) Assert.True(Garble(t.Path, b) >= 1, "a written block was not found on the device");
        await Assert.ThrowsAsync<DataCorruptionException>(() => StreamBytes(a, v, 1));
        Assert.Equal(expected, a.Streams.ReadEntries(v, 1, 4 << 20).Data.ToArray());
    }

    [Fact]
    public async Task Copies_every_replica_holds_durably_are_dropped_and_read_from_the_device_again()
    {
        using var t = new TempLog();
        await using var a = t.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [a.HostId, Id160.Random()])).BaseId;
        a.Streams.ReadEntries(v, 0, 1 << 20);
        var block = TempLog.Pattern(4096, 9);
        await a.WriteAsync(v, 0, block, durable: true);
        a.SetStreamFloor(v, 2);
        Assert.True(Garble(t.Path, block) >= 1);
        // The memory copy of lsn 2 was dropped with the floor: the device copy is read, and found garbled.
        Assert.Throws<DataCorruptionException>(() => a.Streams.ReadEntries(v, 1, 1 << 20));
    }

    [Fact]
    public async Task A_volume_nobody_replicates_is_pulled_from_the_device()
    {
        using var t = new TempLog();
        await using var a = t.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        Assert.Equal(1, a.Streams.ReadEntries(v, 0, 1 << 20).LastLsn);
        var block = TempLog.Pattern(4096, 7);
        await a.WriteAsync(v, 0, block, durable: true);
        Assert.True(Garble(t.Path, block) >= 1);
        // No copy is kept for an unreplicated volume: the garbled device copy is detected, never returned.
        Assert.Throws<DataCorruptionException>(() => a.Streams.ReadEntries(v, 1, 1 << 20));
    }
}
