// An entry whose header went bad after a checkpoint covered it (recovery never reads it; a read finds it): its blocks'
// checksums were in that header, so they are restored from a replica's whole entry of the lsn the lsn table names, taken
// only if it fits the chain (docs/FORMAT.md, "Scrub and repair"). A copy that does not fit is refused and changes nothing;
// the right one moves the blocks the volume still reads from the bad entry, clears the damage, and replays the same.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;

namespace CloudFs.Tests.Engine;

public sealed class BadEntryRestoreTests
{
    [Fact]
    public async Task An_entry_whose_header_went_bad_under_a_checkpoint_is_restored_only_from_a_copy_that_fits_the_chain()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        Id160 v;
        long badLsn, header;
        var old = TempLog.Pattern(16384, 40);
        var bad = TempLog.Pattern(16384, 41);
        var later = TempLog.Pattern(4096, 42);
        var far = TempLog.Pattern(8192, 43);
        var expected = bad.ToArray();
        later.CopyTo(expected, 8192);
        await using var b = tb.Open();
        await using (var a = ta.Open())
        {
            v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            await a.WriteAsync(v, 0, old);                                  // lsn 2: what the bad entry overwrote
            badLsn = (await a.WriteAsync(v, 0, bad)).Lsn;                   // lsn 3: its header goes bad
            await a.WriteAsync(v, 8192, later);                             // lsn 4: writes over part of it
            await a.WriteAsync(v, 65536, far, durable: true);               // lsn 5
            // 32 stored blocks: no CRC table sector, the header is the sector right before the data.
            header = a.DeviceOffsetOf(v, 0) - EntryHeader.Size;
            await ThreeHosts.Ship(a, v, 0, b);
        }
        // The clean close wrote a checkpoint after every entry: recovery does not read the header again.
        ta.FlipBit(header + 120, 2);
        ta.FlipBit(header + 121, 5);

        await using var s = ta.Open();
        Assert.False(s.GetVolume(v)!.IsDamaged);
        var eio = await Assert.ThrowsAsync<DataCorruptionException>(() => ThreeHosts.Read(s, v, 0, 4096));
        Assert.Contains("fails its checksum", eio.Message);
        var plan = await s.Repair.PlanRepairAsync(v, 0, 16384);
        Assert.Empty(plan.Unrepairable);
        var entry = Assert.Single(plan.BadEntries);
        Assert.Equal((header / LogStore.BlockSize, badLsn), (entry.EntryBlock, entry.Lsn));

        var copy = await b.Restoration.ReadLostEntriesAsync(v, badLsn, badLsn);
        var before = await b.Restoration.ReadLostEntriesAsync(v, badLsn - 1, badLsn - 1);
        var badParent = copy.ToArray();
        TempLog.Pattern(20, 44).CopyTo(badParent, EntryHeader.OffParent);
        EntryCodec.Seal(badParent, 0);
        foreach (var (lsn, forged, why) in new[]
                 {
                     (badLsn, before, $"is lsn {badLsn - 1}"),
                     (badLsn - 1, before, "is not the entry at log block"),
                     (badLsn, badParent, "chains onto version"),
                     (badLsn, LostEntryRestoreTests.WithOtherContent(copy), "secret"),
                     (badLsn, copy[..^1], "not one entry"),
                     (badLsn, copy.Concat(before).ToArray(), "not one entry"),
                 })
        {
            var refused = await s.Restoration.RestoreBadEntryAsync(v, entry.EntryBlock, lsn, forged);
            Assert.Equal((0L, 0L, 1L), (refused.Entries, refused.Blocks, refused.RefusedEntries));
            Assert.Contains(why, refused.Refusal);
            await Assert.ThrowsAsync<DataCorruptionException>(() => ThreeHosts.Read(s, v, 0, 4096));
            Assert.True(s.GetVolume(v)!.IsDamaged);
        }

        var restored = await s.Restoration.RestoreBadEntryAsync(v, entry.EntryBlock, badLsn, copy);
        // The blocks the volume still reads from the entry: all but the 8 the write after it replaced.
        Assert.Equal((1L, 24L, 0L, (string?)null), (restored.Entries, restored.Blocks, restored.RefusedEntries, restored.Refusal));
        Assert.False(s.GetVolume(v)!.IsDamaged);
        Assert.Equal(expected, await ThreeHosts.Read(s, v, 0, 16384));
        Assert.Equal(far, await ThreeHosts.Read(s, v, 65536, 8192));
        Assert.Empty((await s.Repair.PlanRepairAsync(v, 0, 16384)).BadEntries);
        s.CloseWithoutCheckpoint();

        // Replay moves the blocks off the bad entry the same way (no checkpoint covers the repair).
        await using var replayed = ta.Open();
        Assert.Equal(expected, await ThreeHosts.Read(replayed, v, 0, 16384));
        Assert.False(replayed.GetVolume(v)!.IsDamaged);
    }

    [Fact]
    public async Task A_restored_entry_takes_the_bad_ones_place_in_the_lsn_table_so_this_host_streams_it_again()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        using var tc = new TempLog();
        Id160 v;
        long badLsn, header, head;
        var bad = TempLog.Pattern(16384, 61);
        await using var b = tb.Open();
        await using (var a = ta.Open())
        {
            v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
            badLsn = (await a.WriteAsync(v, 0, bad)).Lsn;                   // its header goes bad
            head = (await a.WriteAsync(v, 65536, TempLog.Pattern(8192, 62), durable: true)).Lsn;
            header = a.DeviceOffsetOf(v, 0) - EntryHeader.Size;
            await ThreeHosts.Ship(a, v, 0, b);
        }
        ta.FlipBit(header + 120, 2);
        ta.FlipBit(header + 121, 5);
        var copy = await b.Restoration.ReadLostEntriesAsync(v, badLsn, badLsn);

        await using (var s = ta.Open())
        {
            await Assert.ThrowsAnyAsync<CloudFsException>(() => s.Restoration.ReadLostEntriesAsync(v, badLsn, badLsn));
            var restored = await s.Restoration.RestoreBadEntryAsync(v, header / LogStore.BlockSize, badLsn, copy);
            Assert.Null(restored.Refusal);
            // The lsn table names the copy now: the entry is served from here, as the replica has it.
            Assert.Equal(copy, await s.Restoration.ReadLostEntriesAsync(v, badLsn, badLsn));
            Assert.Equal(bad, await ThreeHosts.Read(s, v, 0, 16384));
            s.CloseWithoutCheckpoint();
        }

        // Replay puts the copy in the entry's place again (no checkpoint covers it), and a new replica is fed from here.
        await using var again = ta.Open();
        Assert.Equal(copy, await again.Restoration.ReadLostEntriesAsync(v, badLsn, badLsn));
        Assert.False(again.GetVolume(v)!.IsDamaged);
        await using var c = tc.Open();
        await ThreeHosts.Ship(again, v, 0, c);
        Assert.Equal(head, c.GetVolume(v)!.Lsn);
        Assert.Equal(bad, await ThreeHosts.Read(c, v, 0, 16384));
    }
}
