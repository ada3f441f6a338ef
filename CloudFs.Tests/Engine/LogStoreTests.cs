// The store end to end on a file: reads after writes, reopen with and without checkpoints, and each kind of damage
// (torn tail, flipped bits, foreign entries, stale checkpoints) detected and handled as docs/FORMAT.md says.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;

namespace CloudFs.Tests.Engine;

public sealed class LogStoreTests
{
    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    private static long Find(TempLog t, byte[] needle)
    {
        var all = t.ReadAll();
        var at = all.AsSpan().IndexOf(needle.AsSpan(0, 64));
        Assert.True(at >= 0, "pattern not found in the log");
        return at;
    }

    [Theory]
    [InlineData(0, 4096, null)]
    [InlineData(4096, 0, null)]
    [InlineData(8192, 0, null)]
    [InlineData(100, 512, "multiples of 512")]
    [InlineData(-512, 512, "multiples of 512")]
    [InlineData(4096, 4096, null)]
    [InlineData(4608, 4096, "lie beyond the end of volume")]
    [InlineData(8704, 0, "lie beyond the end of volume")]
    // offset + length overflows a long: still beyond the end, not wrapped round into range.
    [InlineData(4611686018427387904, 4611686018427387904, "lie beyond the end of volume")]
    public void One_range_rule_for_the_writer_and_the_engine(long offset, long length, string? refused)
    {
        var volume = Id160.Parse(new string('b', 40));
        var why = LogStore.RangeRefusal(offset, length, 8192, volume);
        if (refused is null) Assert.Null(why);
        else Assert.Contains(refused, Assert.IsType<InvalidRangeException>(why).Message);
        Assert.Equal(why?.Message, LogStore.RangeRefusal(offset, length, 8192, $"volume {volume}")?.Message);
    }

    [Fact]
    public async Task Written_data_reads_back_and_holes_read_as_zeros()
    {
        using var t = new TempLog();
        await using var s = t.Open();
        var v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [Id160.Random()])).BaseId;
        var a = TempLog.Pattern(64 << 10, 1);
        var r = await s.WriteAsync(v, 4096, a);
        Assert.Equal(2, r.Lsn);
        var back = await Read(s, v, 0, 128 << 10);
        Assert.All(back.AsSpan(0, 4096).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(a, back.AsSpan(4096, a.Length).ToArray());
        Assert.All(back.AsSpan(4096 + a.Length).ToArray(), b => Assert.Equal(0, b));
        await s.WriteZeroesAsync(v, 8192, 4096);
        back = await Read(s, v, 8192, 4096);
        Assert.All(back, b => Assert.Equal(0, b));
        var map = s.Map(v, 0, 1 << 20);
        Assert.Contains(map, m => m.Allocated && m.Offset == 4096);
        Assert.False(map[0].Allocated);
        var info = s.GetVolume(v)!;
        Assert.Equal(3, info.Lsn);
        Assert.True(info.IsWritable);
        Assert.Equal((v, 2L), s.FindVersion(r.Version));
        var headers = s.ReadHeaders(v, 1, 10, 10);
        Assert.Equal([EntryKind.Create, EntryKind.Data, EntryKind.Zero], headers.Select(h => h.Kind));
    }

    [Fact]
    public async Task Usage_counts_the_memory_of_the_indexes_which_grows_with_extents_and_volumes()
    {
        using var t = new TempLog();
        await using var s = t.Open();
        var v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [])).BaseId;
        var one = s.Usage.IndexBytes;
        Assert.True(one > 0, "a volume's index and lsn table hold memory");
        // Scattered writes: one extent each (the index grows by whole pages, the lsn table by doubling).
        for (var i = 0; i < 200; i++) await s.WriteAsync(v, i * 2 * 4096L, TempLog.Pattern(4096, i), durable: false);
        var written = s.Usage.IndexBytes;
        Assert.True(written > one, $"200 extents and entries held no more memory ({written} vs {one} bytes)");
        await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, []);
        Assert.True(s.Usage.IndexBytes > written, "a second volume's index counted");
    }

    [Fact]
    public async Task Small_reads_take_small_buffers_and_only_large_runs_take_a_1_MiB_one()
    {
        // A 1 MiB buffer for every 4 KiB read, with dozens in flight, grew a node's resident memory past 1 GiB
        // under random reads (BENCHMARKS.md, fio over NBD).
        using var t = new TempLog();
        Id160 v;
        await using (var w = t.Open(size: 32 << 20))
        {
            v = (await w.CreateVolumeAsync(8 << 20, VolumeMode.Async, [])).BaseId;
            for (var i = 0; i < 128; i++) await w.WriteAsync(v, i * 16384L, TempLog.Pattern(4096, i));
            await w.WriteAsync(v, 4 << 20, TempLog.Pattern(1 << 20, 999));
        }
        // Reopened: no entry header is cached, so every read also reads its entry's header.
        await using var s = t.Open(size: 32 << 20);
        await Task.WhenAll(Enumerable.Range(0, 128).Select(i => Task.Run(async () =>
            Assert.Equal(TempLog.Pattern(4096, i), await Read(s, v, i * 16384L, 4096)))));
        var (small, large) = s.ReadBuffersCreated;
        Assert.Equal(0, large);
        Assert.InRange(small, 1, 128);
        Assert.Equal(TempLog.Pattern(1 << 20, 999), await Read(s, v, 4 << 20, 1 << 20));
        Assert.True(s.ReadBuffersCreated.Large >= 1, "a 1 MiB run was read without a large buffer");
    }

    [Fact]
    public async Task Reopen_after_a_clean_close_starts_from_the_checkpoint()
    {
        using var t = new TempLog();
        Id160 v;
        var a = TempLog.Pattern(300 << 10, 2);
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, a);
        }
        await using var again = t.Open();
        Assert.True(again.LastRecovery.FromCheckpoint);
        Assert.Equal(0, again.LastRecovery.EntriesReplayed);
        Assert.Equal(a, await Read(again, v, 0, a.Length));
        var head = again.GetVolume(v)!.Lsn;
        var r = await again.WriteAsync(v, 0, a.AsMemory(0, 512));
        Assert.Equal(head + 1, r.Lsn);
    }

    [Fact]
    public async Task Replay_without_a_checkpoint_restores_every_flushed_write()
    {
        using var t = new TempLog();
        Id160 v;
        AppendResult last;
        var data = new List<byte[]>();
        var s = t.Open();
        v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Async, [])).BaseId;
        for (var i = 0; i < 40; i++)
        {
            data.Add(TempLog.Pattern(32 << 10, 100 + i));
            await s.WriteAsync(v, i * (32 << 10), data[i]);
        }
        last = await s.WriteAsync(v, 0, data[0], durable: true);
        s.CloseWithoutCheckpoint();
        await using var again = t.Open();
        Assert.False(again.LastRecovery.FromCheckpoint);
        Assert.Equal(42, again.LastRecovery.EntriesReplayed);
        Assert.Equal(last.Version, again.GetVolume(v)!.CurrentVersion);
        for (var i = 0; i < 40; i++) Assert.Equal(data[i], await Read(again, v, i * (32 << 10), 32 << 10));
        // The chain continues where it stopped (the clear id was recomputed from the head's header).
        Assert.Equal(43, (await again.WriteAsync(v, 0, data[1])).Lsn);
    }

    [Fact]
    public async Task Replay_stops_at_a_torn_entry()
    {
        using var t = new TempLog();
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var a = TempLog.Pattern(8192, 3);
        var b = TempLog.Pattern(8192, 4);
        await s.WriteAsync(v, 0, a, durable: true);
        await s.WriteAsync(v, 0, b);
        s.CloseWithoutCheckpoint();
        // Tear B, which no flush covered: its last sector never reached the disk.
        t.Poke(Find(t, b) + 8192 - 512, new byte[512]);
        await using var again = t.Open();
        Assert.Equal(2, again.GetVolume(v)!.Lsn);
        Assert.Equal(a, await Read(again, v, 0, 8192));
        Assert.Contains("fails its checksum", again.LastRecovery.StopReason);
        // The chain goes on from A (B was never acknowledged as durable).
        Assert.Equal(3, (await again.WriteAsync(v, 0, b, durable: true)).Lsn);
    }

    [Fact]
    public async Task Flipped_bit_in_a_body_fails_that_range_only()
    {
        using var t = new TempLog();
        Id160 v;
        var a = TempLog.Pattern(16 << 10, 5);
        var b = TempLog.Pattern(16 << 10, 6);
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, a);
            await s.WriteAsync(v, 64 << 10, b);
        }
        t.FlipBit(Find(t, a) + 4096 + 3, 5);
        await using var again = t.Open();
        var ex = await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(again, v, 0, 16 << 10));
        Assert.Equal(4096, ex.Offset);
        Assert.Equal(b, await Read(again, v, 64 << 10, 16 << 10));
        Assert.Equal(a.AsSpan(0, 4096).ToArray(), await Read(again, v, 0, 4096));
        Assert.Equal(a.AsSpan(8192).ToArray(), await Read(again, v, 8192, 8192));
    }

    [Fact]
    public async Task Two_flipped_bits_in_a_checkpointed_header_fail_reads_of_that_entry_only()
    {
        using var t = new TempLog();
        Id160 v;
        var a = TempLog.Pattern(8192, 7);
        var b = TempLog.Pattern(8192, 8);
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, a);
            await s.WriteAsync(v, 8192, b);
        }
        // Covered by the checkpoint, so recovery never reads it: the read of that entry's range fails, the other reads.
        // Two bits of the timestamp: beyond the one-bit correction every header read applies (one bit is corrected).
        t.FlipBit(Find(t, a) - 512 + EntryHeader.OffTimestamp, 1);
        t.FlipBit(Find(t, a) - 512 + EntryHeader.OffTimestamp + 1, 4);
        await using var again = t.Open();
        await Assert.ThrowsAsync<DataCorruptionException>(async () => await Read(again, v, 0, 8192));
        Assert.Equal(b, await Read(again, v, 8192, 8192));
    }

    [Fact]
    public async Task A_foreign_entry_at_the_tail_is_not_replayed()
    {
        using var t = new TempLog();
        using var other = new TempLog();
        byte[] foreign;
        long foreignOffset;
        await using (var o = other.Open())
        {
            var ov = (await o.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            await o.WriteAsync(ov, 0, TempLog.Pattern(4096, 9), durable: true);
        }
        foreignOffset = Find(other, TempLog.Pattern(4096, 9)) - 512;
        foreign = other.Peek(foreignOffset, 512 + 4096);
        var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(4096, 10), durable: true);
        s.CloseWithoutCheckpoint();
        // Right after our entry and the durable mark that follows it.
        var ours = Find(t, TempLog.Pattern(4096, 10)) - 512;
        var tail = ours + 512 + 4096 + 512;
        Assert.True(DurableMark.HasMagic(t.Peek(tail - 512, 512)), "a durable mark follows the flushed entry");
        // As written elsewhere: another device's segment seq.
        t.Poke(tail, foreign);
        await using (var again = t.Open())
        {
            Assert.Single(again.ListVolumes());
            Assert.Contains("stale", again.LastRecovery.StopReason);
            again.CloseWithoutCheckpoint();
        }
        // Re-sealed with this segment's seq (a valid checksum): the chain rule still refuses it.
        var seqOfOurs = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(t.Peek(ours + EntryHeader.OffSeq, 8));
        EntryCodec.Seal(foreign, seqOfOurs);
        t.Poke(tail, foreign);
        await using var third = t.Open();
        Assert.Single(third.ListVolumes());
        Assert.Equal(2, third.GetVolume(v)!.Lsn);
        Assert.Contains("unknown volume", third.LastRecovery.StopReason);
    }

    [Fact]
    public async Task A_damaged_newest_checkpoint_falls_back_to_the_older_one_and_rolls_forward()
    {
        using var t = new TempLog();
        Id160 v;
        var data = Enumerable.Range(0, 6).Select(i => TempLog.Pattern(16 << 10, 20 + i)).ToArray();
        ulong gen;
        long slotA, slotB;
        {
            var s = t.Open();
            slotA = s.Layout.CheckpointSlotA;
            slotB = s.Layout.CheckpointSlotB;
            v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, data[0]);
            await s.Checkpoints.WriteAsync();
            await s.WriteAsync(v, 16 << 10, data[1]);
            await s.Checkpoints.WriteAsync();
            await s.WriteAsync(v, 32 << 10, data[2], durable: true);
            s.CloseWithoutCheckpoint();
        }
        await using (var s = t.Open())
        {
            gen = s.LastRecovery.Generation;
            Assert.Equal(2UL, gen);
            Assert.Equal(1, s.LastRecovery.EntriesReplayed);
            s.CloseWithoutCheckpoint();
        }
        // Generation 2 went to slot B: damage its payload; generation 1 (slot A) is older but valid.
        t.FlipBit(slotB + 512 + 40, 3);
        await using var again = t.Open();
        Assert.True(again.LastRecovery.FromCheckpoint);
        Assert.Equal(1UL, again.LastRecovery.Generation);
        Assert.Equal(2, again.LastRecovery.EntriesReplayed);
        for (var i = 0; i < 3; i++) Assert.Equal(data[i], await Read(again, v, i * (16 << 10), 16 << 10));
        Assert.Contains(t.Messages, m => m.Contains("fails its checksum"));
        _ = slotA;
    }

    [Fact]
    public async Task Out_of_space_gives_LogFullException_and_the_log_stays_readable()
    {
        using var t = new TempLog();
        Id160 v;
        var written = new Dictionary<long, byte[]>();
        await using (var s = t.Open(size: 12 << 20))
        {
            v = (await s.CreateVolumeAsync(64 << 20, VolumeMode.Async, [])).BaseId;
            var full = false;
            for (var i = 0; i < 1000 && !full; i++)
            {
                var d = TempLog.Pattern(60 << 10, i);
                try
                {
                    await s.WriteAsync(v, (long)i * (60 << 10), d);
                    written[(long)i * (60 << 10)] = d;
                }
                catch (LogFullException) { full = true; }
            }
            Assert.True(full, "the log never filled");
            // Only the segments kept for compaction are left (live data fills the rest: compaction can free nothing).
            Assert.Equal(s.CompactionStats.ReserveSegments, s.Usage.FreeSegments);
            foreach (var (off, d) in written) Assert.Equal(d, await Read(s, v, off, d.Length));
            // Small entries still fit in what is left of the current segment or fail cleanly; the chain is intact.
            var lsn = s.GetVolume(v)!.Lsn;
            try { Assert.Equal(lsn + 1, (await s.WriteAsync(v, (64 << 20) - 512, TempLog.Pattern(512, 1))).Lsn); }
            catch (LogFullException) { Assert.Equal(lsn, s.GetVolume(v)!.Lsn); }
        }
        await using var again = t.Open(size: 12 << 20);
        foreach (var (off, d) in written) Assert.Equal(d, await Read(again, v, off, d.Length));
    }

    [Fact]
    public async Task A_volume_whose_secret_is_not_held_is_readable_but_not_writable()
    {
        using var t = new TempLog();
        Id160 v;
        var a = TempLog.Pattern(4096, 11);
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, a);
        }
        var keys = File.ReadAllText(t.Path + ".keys");
        Assert.Contains(v.ToString(), keys);
        if (OperatingSystem.IsLinux()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(t.Path + ".keys"));
        // The secret is nowhere in the log.
        var secret = Convert.FromHexString(keys.Split('\n').First(l => l.StartsWith(v.ToString())).Split(' ')[1]);
        Assert.Equal(-1, t.ReadAll().AsSpan().IndexOf(secret));
        File.Delete(t.Path + ".keys");
        await using var again = t.Open();
        Assert.False(again.GetVolume(v)!.IsWritable);
        Assert.Equal(a, await Read(again, v, 0, 4096));
        await Assert.ThrowsAsync<NotPrimaryException>(async () => await again.WriteAsync(v, 0, a));
    }

    [Fact]
    public async Task Concurrent_writers_get_consecutive_lsns_and_an_expected_lsn_is_enforced()
    {
        using var t = new TempLog();
        await using var s = t.Open(size: 64 << 20, segment: 1 << 20);
        var v = (await s.CreateVolumeAsync(8 << 20, VolumeMode.Sync, [])).BaseId;
        var tasks = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
            (i, await s.WriteAsync(v, i * 4096L, TempLog.Pattern(4096, 1000 + i), durable: i % 4 == 0)))).ToArray();
        var results = await Task.WhenAll(tasks);
        Assert.Equal(Enumerable.Range(2, 64).Select(x => (long)x), results.Select(r => r.Item2.Lsn).OrderBy(x => x));
        foreach (var (i, _) in results) Assert.Equal(TempLog.Pattern(4096, 1000 + i), await Read(s, v, i * 4096L, 4096));
        await Assert.ThrowsAsync<EntryRejectedException>(async () => await s.AppendDataAsync(v, 10, 0, new byte[512], false));
        Assert.Equal(66, (await s.AppendDataAsync(v, 66, 0, new byte[512], false)).Lsn);
        await Assert.ThrowsAsync<InvalidRangeException>(async () => await s.WriteAsync(v, 100, new byte[512]));
        await Assert.ThrowsAsync<InvalidRangeException>(async () => await s.WriteAsync(v, 8 << 20, new byte[512]));
    }

    [Fact]
    public async Task A_branch_reads_through_to_its_frozen_version_and_diverges_from_it()
    {
        using var t = new TempLog();
        Id160 v, b;
        var a = TempLog.Pattern(8192, 12);
        var later = TempLog.Pattern(8192, 13);
        var mine = TempLog.Pattern(4096, 14);
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            var first = await s.WriteAsync(v, 0, a);
            await s.WriteAsync(v, 0, later);
            var older = await s.BranchAsync(first.Version);
            b = older.BaseId;
            Assert.Equal(first.Version, older.BranchedFrom);
            await s.WriteAsync(b, 4096, mine);
            Assert.Equal(a.AsSpan(0, 4096).ToArray(), await Read(s, b, 0, 4096));
            Assert.Equal(mine, await Read(s, b, 4096, 4096));
            Assert.Equal(later, await Read(s, v, 0, 8192));
        }
        await using var again = t.Open();
        Assert.Equal(a.AsSpan(0, 4096).ToArray(), await Read(again, b, 0, 4096));
        Assert.Equal(mine, await Read(again, b, 4096, 4096));
        Assert.Equal(later, await Read(again, v, 0, 8192));
    }
}
