// Entries recovery lost to a header beyond correction, restored from a replica's copy of them (docs/FORMAT.md, "Scrub
// and repair"): a copy that does not fit the chain is refused and changes nothing; the right one is appended again,
// applied only where no later entry wrote, clears the damage, and is replayed the same after a restart. A lost view
// change sets the view (no later one has); a lost trash or resize entry sets its state only when no later entry has
// set it (a later restore keeps the volume out of the trash), after a crash before the checkpoint that follows too.
using System.Buffers.Binary;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;

namespace CloudFs.Tests.Engine;

public sealed class LostEntryRestoreTests
{
    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    /// <summary>The entry at the start of <paramref name="copy"/> with a stored byte changed, its CRCs and digest made to match.</summary>
    internal static byte[] WithOtherContent(byte[] copy)
    {
        var forged = copy.ToArray();
        var data = forged.AsSpan(EntryHeader.Size, LogStore.BlockSize);
        data[10] ^= 0xFF;
        BinaryPrimitives.WriteUInt32LittleEndian(forged.AsSpan(EntryHeader.OffInlineCrc), Crc32C.Compute(data));
        EntryCodec.WriteDigest(forged, EntryCodec.ComputeDigest(forged));
        EntryCodec.Seal(forged, 0);
        Assert.Null(EntryCodec.Verify(forged, out _));
        return forged;
    }

    [Fact]
    public async Task A_lost_entry_is_restored_only_from_a_copy_that_fits_the_chain_and_only_where_no_later_entry_wrote()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var old = TempLog.Pattern(16384, 20);
        var lost = TempLog.Pattern(16384, 21);
        var later = TempLog.Pattern(4096, 22);
        var far = TempLog.Pattern(8192, 23);
        await a.WriteAsync(v, 0, old);                                      // lsn 2: older than the lost entry
        var lostLsn = (await a.WriteAsync(v, 0, lost)).Lsn;                 // lsn 3: its header will be garbled
        await a.WriteAsync(v, 8192, later);                                 // lsn 4: writes over part of it
        await a.WriteZeroesAsync(v, 12288, 4096);                           // lsn 5: zeroes another part
        var head = await a.WriteAsync(v, 65536, far, durable: true);        // lsn 6
        var expected = lost.ToArray();
        later.CopyTo(expected, 8192);
        Array.Clear(expected, 12288, 4096);

        // The replica holds the same chain.
        await using var b = tb.Open();
        using (var stream = new MemoryStream())
        {
            await a.Streams.StreamAsync(v, 0, stream, follow: false);
            stream.Position = 0;
            Assert.Null((await b.Streams.ApplyAsync(stream)).Error);
        }
        a.CloseWithoutCheckpoint();
        var header = ta.ReadAll().AsSpan().IndexOf(lost.AsSpan(0, 64)) - EntryHeader.Size;
        ta.Poke(header + EntryHeader.OffVolume, TempLog.Pattern(64, 24));

        // Recovery skips the entry; a checkpoint and another restart keep knowing what was lost.
        await using (var again = ta.Open())
        {
            Assert.Equal(head.Lsn, again.GetVolume(v)!.Lsn);
            Assert.Equal(lostLsn, Assert.Single(again.Restoration.LostEntries(v)).FirstLsn);
        }
        await using var s = ta.Open();
        var run = Assert.Single(s.Restoration.LostEntries(v));
        Assert.Equal((lostLsn, lostLsn), (run.FirstLsn, run.LastLsn));
        await Assert.ThrowsAsync<DataCorruptionException>(() => Read(s, v, 0, 4096));

        var copy = await b.Restoration.ReadLostEntriesAsync(v, lostLsn, lostLsn);
        var next = await b.Restoration.ReadLostEntriesAsync(v, lostLsn + 1, lostLsn + 1);
        var badParent = copy.ToArray();
        TempLog.Pattern(20, 25).CopyTo(badParent, EntryHeader.OffParent);
        EntryCodec.Seal(badParent, 0);
        foreach (var (forged, why) in new[]
                 {
                     (next, $"is lsn {lostLsn + 1}"),
                     (badParent, "does not chain onto version"),
                     (WithOtherContent(copy), "secret"),
                     (copy[..^1], "ends inside"),
                     (copy.Concat(next).ToArray(), "after the entry"),
                 })
        {
            var refused = await s.Restoration.RestoreLostEntriesAsync(v, lostLsn, forged);
            Assert.Equal(0, refused.Entries);
            Assert.Equal(1, refused.RefusedEntries);
            Assert.Contains(why, refused.Refusal);
            Assert.True(s.GetVolume(v)!.IsDamaged);
            Assert.Single(s.Restoration.LostEntries(v));
        }

        var restored = await s.Restoration.RestoreLostEntriesAsync(v, lostLsn, copy);
        Assert.Equal((1L, 32L, 0L, (string?)null), (restored.Entries, restored.Blocks, restored.RefusedEntries, restored.Refusal));
        Assert.False(s.GetVolume(v)!.IsDamaged);
        Assert.Empty(s.Restoration.LostEntries(v));
        Assert.Equal(expected, await Read(s, v, 0, 16384));
        Assert.Equal(far, await Read(s, v, 65536, 8192));
        Assert.Equal(head.Lsn, s.GetVolume(v)!.Lsn);
        // A second copy finds nothing left to restore.
        Assert.Equal(0, (await s.Restoration.RestoreLostEntriesAsync(v, lostLsn, copy)).Entries);
        s.CloseWithoutCheckpoint();

        // Replay applies the restored entry the same way (no checkpoint covers it).
        await using var replayed = ta.Open();
        Assert.False(replayed.GetVolume(v)!.IsDamaged);
        Assert.Empty(replayed.Restoration.LostEntries(v));
        Assert.Equal(expected, await Read(replayed, v, 0, 16384));
        Assert.Equal(far, await Read(replayed, v, 65536, 8192));
        Assert.Equal(head.Lsn, replayed.GetVolume(v)!.Lsn);
    }

    /// <summary>Garbles the header of the entry of <paramref name="log"/> whose version is <paramref name="version"/> beyond one-bit correction.</summary>
    private static void GarbleEntryWithVersion(TempLog log, Id160 version)
    {
        var header = log.ReadAll().AsSpan().IndexOf(version.ToArray()) - EntryHeader.OffVersion;
        Assert.True(header > 0 && header % LogStore.BlockSize == 0, $"no entry header with version {version}");
        log.Poke(header + EntryHeader.OffVolume, TempLog.Pattern(40, 26));
    }

    [Fact]
    public async Task A_lost_view_change_is_restored_and_sets_the_view_when_no_later_view_change_has()
    {
        await using var h = await ThreeHosts.StartAsync();
        var v = h.Volume;
        h.ShareSecret();
        var fromC = h.C.Ownership.ReleaseShare(v, ThreeHosts.Holder(h.B));
        var taken = await h.B.Ownership.TakeOverAsync(v, [fromC], [h.B.HostId, h.C.HostId, h.A.HostId]);
        var viewLsn = taken.Lsn;
        var later = TempLog.Pattern(4096, 27);
        await h.B.WriteAsync(v, 4096, later, durable: true);
        await h.B.WriteAsync(v, 65536, TempLog.Pattern(8192, 28), durable: true);
        await ThreeHosts.Ship(h.B, v, viewLsn - 1, h.C);
        var expected = await ThreeHosts.Read(h.C, v, 0, 8192);

        // C loses the view change to a garbled header: its recovery skips it and keeps the view before.
        h.C.CloseWithoutCheckpoint();
        GarbleEntryWithVersion(h.LogC, taken.View);
        await h.OpenAsync(2);
        var run = Assert.Single(h.C.Restoration.LostEntries(v));
        Assert.Equal((viewLsn, viewLsn), (run.FirstLsn, run.LastLsn));
        Assert.Equal(0, h.C.GetVolume(v)!.ViewNumber);
        Assert.True(h.C.GetVolume(v)!.IsDamaged);

        var restored = await h.C.Restoration.RestoreLostEntriesAsync(v, viewLsn, await h.B.Restoration.ReadLostEntriesAsync(v, viewLsn, viewLsn));

        Assert.Equal((1L, 0L, (string?)null), (restored.Entries, restored.RefusedEntries, restored.Refusal));
        void AssertViewRestored()
        {
            var info = h.C.GetVolume(v)!;
            Assert.False(info.IsDamaged);
            Assert.Empty(h.C.Restoration.LostEntries(v));
            Assert.Equal((1L, taken.View), (info.ViewNumber, info.View));
            Assert.Equal([h.B.HostId, h.C.HostId, h.A.HostId], info.Replicas);
        }
        AssertViewRestored();
        Assert.Equal(expected, await ThreeHosts.Read(h.C, v, 0, 8192));

        // Replay restores it the same way.
        await h.ReopenAsync(2, crash: true);
        AssertViewRestored();
        Assert.Equal(expected, await ThreeHosts.Read(h.C, v, 0, 8192));
    }

    /// <summary>The checkpoint slots of <paramref name="log"/>, closed (everything between the device header and the first
    /// segment), to put back after a restoration: as a crash right before the checkpoint that follows it leaves the log.</summary>
    private static byte[] CheckpointSlots(TempLog log)
    {
        Assert.True(DeviceHeader.TryDecode(log.Peek(0, DeviceHeader.Size), out var header, out var error), error);
        return log.Peek(DeviceHeader.Size, (int)(header.FirstSegmentOffset - DeviceHeader.Size));
    }

    [Fact]
    public async Task A_lost_trash_entry_no_later_entry_undoes_is_restored_and_the_volume_is_in_the_trash_after_replay_too()
    {
        await using var h = await ThreeHosts.StartAsync();
        var v = h.Volume;
        h.ShareSecret();
        var trashed = await h.A.TrashVolumeAsync(v);
        await ThreeHosts.Ship(h.A, v, trashed.Lsn - 1, h.B);
        await ThreeHosts.Ship(h.A, v, trashed.Lsn - 1, h.C);
        // B takes over: a view change after the trash entry, which sets no trash state.
        var fromC = h.C.Ownership.ReleaseShare(v, ThreeHosts.Holder(h.B));
        var taken = await h.B.Ownership.TakeOverAsync(v, [fromC], [h.B.HostId, h.C.HostId, h.A.HostId]);
        await ThreeHosts.Ship(h.B, v, trashed.Lsn, h.C);

        h.C.CloseWithoutCheckpoint();
        GarbleEntryWithVersion(h.LogC, trashed.CurrentVersion);
        var slots = CheckpointSlots(h.LogC);
        await h.OpenAsync(2);
        var run = Assert.Single(h.C.Restoration.LostEntries(v));
        Assert.Equal((trashed.Lsn, trashed.Lsn), (run.FirstLsn, run.LastLsn));
        Assert.False(h.C.GetVolume(v)!.IsTrashed);

        var restored = await h.C.Restoration.RestoreLostEntriesAsync(v, trashed.Lsn, await h.B.Restoration.ReadLostEntriesAsync(v, trashed.Lsn, trashed.Lsn));

        Assert.Equal((1L, 0L, (string?)null), (restored.Entries, restored.RefusedEntries, restored.Refusal));
        void AssertTrashed()
        {
            var info = h.C.GetVolume(v)!;
            Assert.True(info.IsTrashed);
            Assert.False(info.IsDamaged);
            Assert.Empty(h.C.Restoration.LostEntries(v));
            Assert.Equal((taken.Lsn, 1L), (info.Lsn, info.ViewNumber));
        }
        AssertTrashed();

        // A crash before the checkpoint that follows: replay settles it the same way.
        h.C.CloseWithoutCheckpoint();
        h.LogC.Poke(DeviceHeader.Size, slots);
        await h.OpenAsync(2);
        AssertTrashed();
        int Settled() { lock (h.LogC.Messages) return h.LogC.Messages.Count(m => m.Contains($"the trash entry at lsn {trashed.Lsn}, lost to corruption here, restored; its state applied")); }
        Assert.Equal(2, Settled());
        await h.ReopenAsync(2);
        AssertTrashed();
    }

    [Fact]
    public async Task A_lost_trash_entry_a_later_restore_undid_is_restored_and_the_volume_stays_out_of_the_trash()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(8192, 29));
        var trashed = await a.TrashVolumeAsync(v);
        await a.RestoreVolumeAsync(v);
        await a.WriteAsync(v, 65536, TempLog.Pattern(8192, 30), durable: true);
        var expected = await Read(a, v, 0, 1 << 17);
        await using var b = tb.Open();
        await ThreeHosts.Ship(a, v, 0, b);
        a.CloseWithoutCheckpoint();
        GarbleEntryWithVersion(ta, trashed.CurrentVersion);
        var slots = CheckpointSlots(ta);
        var s = ta.Open();
        var run = Assert.Single(s.Restoration.LostEntries(v));
        Assert.Equal((trashed.Lsn, trashed.Lsn), (run.FirstLsn, run.LastLsn));

        var restored = await s.Restoration.RestoreLostEntriesAsync(v, run.FirstLsn, await b.Restoration.ReadLostEntriesAsync(v, run.FirstLsn, run.LastLsn));

        Assert.Equal((1L, 0L, (string?)null), (restored.Entries, restored.RefusedEntries, restored.Refusal));
        async Task AssertRestoredOutOfTrash(LogStore store)
        {
            var info = store.GetVolume(v)!;
            Assert.False(info.IsTrashed);
            Assert.False(info.IsDamaged);
            Assert.Empty(store.Restoration.LostEntries(v));
            Assert.Equal(expected, await Read(store, v, 0, 1 << 17));
        }
        await AssertRestoredOutOfTrash(s);

        // A crash before the checkpoint that follows: replay settles it the same way.
        s.CloseWithoutCheckpoint();
        ta.Poke(DeviceHeader.Size, slots);
        await using var replayed = ta.Open();
        await AssertRestoredOutOfTrash(replayed);
        int Settled() { lock (ta.Messages) return ta.Messages.Count(m => m.Contains($"the trash entry at lsn {trashed.Lsn}, lost to corruption here, restored; its state not applied")); }
        Assert.Equal(2, Settled());
    }

    [Fact]
    public async Task A_lost_resize_entry_is_restored_and_sets_the_size_after_replay_too()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(8192, 31));
        var resized = await a.ResizeVolumeAsync(v, 2 << 20, allowShrink: false);
        var beyond = TempLog.Pattern(8192, 32);
        await a.WriteAsync(v, 1 << 20, beyond, durable: true);
        await using var b = tb.Open();
        await ThreeHosts.Ship(a, v, 0, b);
        a.CloseWithoutCheckpoint();
        GarbleEntryWithVersion(ta, resized.CurrentVersion);
        var slots = CheckpointSlots(ta);
        var s = ta.Open();
        var run = Assert.Single(s.Restoration.LostEntries(v));
        Assert.Equal((resized.Lsn, resized.Lsn), (run.FirstLsn, run.LastLsn));
        Assert.Equal(1L << 20, s.GetVolume(v)!.SizeBytes);

        var restored = await s.Restoration.RestoreLostEntriesAsync(v, run.FirstLsn, await b.Restoration.ReadLostEntriesAsync(v, run.FirstLsn, run.LastLsn));

        Assert.Equal((1L, 0L, (string?)null), (restored.Entries, restored.RefusedEntries, restored.Refusal));
        async Task AssertResized(LogStore store)
        {
            var info = store.GetVolume(v)!;
            Assert.Equal(2L << 20, info.SizeBytes);
            Assert.False(info.IsDamaged);
            Assert.Empty(store.Restoration.LostEntries(v));
            Assert.Equal(beyond, await Read(store, v, 1 << 20, 8192));
        }
        await AssertResized(s);

        // A crash before the checkpoint that follows: replay settles it the same way.
        s.CloseWithoutCheckpoint();
        ta.Poke(DeviceHeader.Size, slots);
        await using var replayed = ta.Open();
        await AssertResized(replayed);
        int Settled() { lock (ta.Messages) return ta.Messages.Count(m => m.Contains($"the resize entry at lsn {resized.Lsn}, lost to corruption here, restored; its state applied")); }
        Assert.Equal(2, Settled());
    }

    [Fact]
    public async Task A_lost_protect_entry_is_restored_and_protects_its_version_after_replay_too()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(8192, 41));
        var version = a.GetVolume(v)!.CurrentVersion;
        var protectedAt = await a.ProtectVersionAsync(v, version, protect: true);
        await a.WriteAsync(v, 8192, TempLog.Pattern(8192, 42), durable: true);
        await using var b = tb.Open();
        await ThreeHosts.Ship(a, v, 0, b);
        a.CloseWithoutCheckpoint();
        GarbleEntryWithVersion(ta, protectedAt.CurrentVersion);
        var slots = CheckpointSlots(ta);
        var s = ta.Open();
        var run = Assert.Single(s.Restoration.LostEntries(v));
        Assert.Equal((protectedAt.Lsn, protectedAt.Lsn), (run.FirstLsn, run.LastLsn));
        Assert.Empty(s.GetVolume(v)!.Protected);

        var restored = await s.Restoration.RestoreLostEntriesAsync(v, run.FirstLsn, await b.Restoration.ReadLostEntriesAsync(v, run.FirstLsn, run.LastLsn));

        Assert.Equal((1L, 0L, (string?)null), (restored.Entries, restored.RefusedEntries, restored.Refusal));
        Assert.Equal([version], s.GetVolume(v)!.Protected);
        // A crash before the checkpoint that follows: replay restores it the same way.
        s.CloseWithoutCheckpoint();
        ta.Poke(DeviceHeader.Size, slots);
        await using var replayed = ta.Open();
        Assert.Equal([version], replayed.GetVolume(v)!.Protected);
        Assert.Empty(replayed.Restoration.LostEntries(v));
    }

    [Fact]
    public async Task A_lost_trash_entry_is_refused_while_an_entry_after_it_is_lost_here_too_and_nothing_changes()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(8192, 33));
        var trashed = await a.TrashVolumeAsync(v);
        await a.RestoreVolumeAsync(v);
        await a.WriteAsync(v, 65536, TempLog.Pattern(8192, 34));
        var later = a.GetVolume(v)!;
        await a.WriteAsync(v, 131072, TempLog.Pattern(8192, 35), durable: true);
        await using var b = tb.Open();
        await ThreeHosts.Ship(a, v, 0, b);
        a.CloseWithoutCheckpoint();
        GarbleEntryWithVersion(ta, trashed.CurrentVersion);
        GarbleEntryWithVersion(ta, later.CurrentVersion);
        await using var s = ta.Open();
        Assert.Equal([(trashed.Lsn, trashed.Lsn), (later.Lsn, later.Lsn)], s.Restoration.LostEntries(v).Select(r => (r.FirstLsn, r.LastLsn)));

        var refused = await s.Restoration.RestoreLostEntriesAsync(v, trashed.Lsn, await b.Restoration.ReadLostEntriesAsync(v, trashed.Lsn, trashed.Lsn));

        Assert.Equal((0L, 1L), (refused.Entries, refused.RefusedEntries));
        Assert.True(refused.Refusal!.Contains($"the entry at lsn {later.Lsn} after the run is lost here too"), refused.Refusal);
        Assert.True(s.GetVolume(v)!.IsDamaged);
        Assert.False(s.GetVolume(v)!.IsTrashed);
        Assert.Equal(2, s.Restoration.LostEntries(v).Count);
    }
}
