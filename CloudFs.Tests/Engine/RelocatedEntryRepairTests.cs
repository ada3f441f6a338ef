// A bad header that no lsn of the volume names (here a compaction's Relocation entry: its lsn and its blocks' checksums
// were only in it) is repaired from replicas without trusting them: a replica's verified copy of the blocks must equal
// this host's own bytes (confirming them), or, where this host's bytes are bad too, a majority of the replica set must
// agree on the block as of this host's head (docs/FORMAT.md, "Scrub and repair"). Forged or unagreed copies are refused
// and change nothing; the repair is written like any other (Relocation entries flagged as repairs) and replays the same.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;

namespace CloudFs.Tests.Engine;

public sealed class RelocatedEntryRepairTests
{
    private const int Length = 16 << 10;

    /// <summary>
    /// Three hosts with 16 KiB at 0 of the volume; on A compaction copies it into a Relocation entry, then (A down, a
    /// checkpoint covering it) two bits of that entry's header flip, and with <paramref name="spoilData"/> a byte of its
    /// first block too. Returns the hosts, the data and the relocation's header offset.
    /// </summary>
    private static async Task<(ThreeHosts Hosts, byte[] Data, long Header)> RelocatedAndSpoiledOnAAsync(bool spoilData)
    {
        var h = await ThreeHosts.StartAsync();
        var data = TempLog.Pattern(Length, 70);
        var shipped = h.A.GetVolume(h.Volume)!.Lsn;
        await h.A.WriteAsync(h.Volume, 0, data);
        // Fill the segment with writes over one other range: mostly dead, so compaction copies what is live.
        for (var i = 0; i < 16; i++) await h.A.WriteAsync(h.Volume, 65536, TempLog.Pattern(Length, 71 + i), durable: i == 15);
        await ThreeHosts.Ship(h.A, h.Volume, shipped, h.B);
        await ThreeHosts.Ship(h.A, h.Volume, shipped, h.C);
        h.A.SetStreamFloor(h.Volume, h.A.GetVolume(h.Volume)!.Lsn);
        var written = h.A.DeviceOffsetOf(h.Volume, 0);
        await h.A.CompactAsync();
        // 32 blocks in one Relocation entry: no CRC table sector, the header is the sector right before the data.
        var header = h.A.DeviceOffsetOf(h.Volume, 0) - EntryHeader.Size;
        Assert.NotEqual(written, header + EntryHeader.Size);
        await h.CloseAsync(0);
        h.LogA.FlipBit(header + 120, 2);
        h.LogA.FlipBit(header + 121, 5);
        if (spoilData) h.LogA.FlipBit(header + EntryHeader.Size + 100, 3);
        await h.OpenAsync(0);
        await Assert.ThrowsAsync<DataCorruptionException>(() => ThreeHosts.Read(h.A, h.Volume, 0, Length));
        return (h, data, header);
    }

    private static async Task<ReplicaBlocks> FetchAsync(LogStore replica, RepairPlan plan) =>
        await replica.Repair.ReadForRepairAsync(plan.Volume, plan.FetchOffset, plan.FetchLength, plan.HeadLsn, plan.HeadVersion);

    [Fact]
    public async Task A_relocated_entry_whose_header_went_bad_is_repaired_where_a_replica_confirms_this_hosts_own_bytes()
    {
        var (h, data, header) = await RelocatedAndSpoiledOnAAsync(spoilData: false);
        await using var _ = h;

        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, Length);
        Assert.Empty(plan.BadEntries);
        Assert.Empty(plan.Unrepairable);
        Assert.Equal(Length / LogStore.BlockSize, plan.Blocks.Count);
        Assert.All(plan.Blocks, b => Assert.True(b.Unchecked && b.EntryBlock == header / LogStore.BlockSize));

        var honest = await FetchAsync(h.B, plan);
        var forged = honest with { Data = TempLog.Pattern(Length, 99) };
        var oneForged = honest.Data.ToArray();
        oneForged[5 * LogStore.BlockSize + 7] ^= 0x40;
        foreach (var (copy, refused, why) in new[]
                 {
                     (forged, Length / LogStore.BlockSize, "does not confirm this host's own bytes"),
                     (honest with { HoldsAskerHead = false }, Length / LogStore.BlockSize, "does not hold this host's head"),
                 })
        {
            var outcome = await h.A.Repair.ApplyRepairAsync(plan, copy);
            Assert.Equal((0L, (long)refused), (outcome.Repaired, outcome.Refused));
            Assert.Contains(why, outcome.Refusal);
            await Assert.ThrowsAsync<DataCorruptionException>(() => ThreeHosts.Read(h.A, h.Volume, 0, Length));
        }
        // One forged block of an otherwise honest copy: that block alone stays bad.
        var partly = await h.A.Repair.ApplyRepairAsync(plan, honest with { Data = oneForged });
        Assert.Equal((31L, 1L), (partly.Repaired, partly.Refused));
        await Assert.ThrowsAsync<DataCorruptionException>(() => ThreeHosts.Read(h.A, h.Volume, 5 * LogStore.BlockSize, LogStore.BlockSize));
        Assert.Equal(data.AsSpan(0, 5 * LogStore.BlockSize).ToArray(), await ThreeHosts.Read(h.A, h.Volume, 0, 5 * LogStore.BlockSize));

        var rest = await h.A.Repair.PlanRepairAsync(h.Volume, 0, Length);
        Assert.Equal(5L, Assert.Single(rest.Blocks).Block);
        var done = await h.A.Repair.ApplyRepairAsync(rest, await FetchAsync(h.C, rest));
        Assert.Equal((1L, 0L), (done.Repaired, done.Refused));
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 0, Length));
        Assert.False(h.A.GetVolume(h.Volume)!.IsDamaged);
        Assert.Empty((await h.A.Repair.PlanRepairAsync(h.Volume, 0, Length)).Blocks);

        // No checkpoint covers the repairs: replay moves the blocks off the bad entry again.
        await h.ReopenAsync(0, crash: true);
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 0, Length));
        Assert.False(h.A.GetVolume(h.Volume)!.IsDamaged);
    }

    [Fact]
    public async Task Where_this_hosts_own_bytes_are_bad_too_only_a_majority_of_the_replicas_agreeing_repairs_the_block()
    {
        var (h, data, _) = await RelocatedAndSpoiledOnAAsync(spoilData: true);
        await using var _ = h;

        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, Length);
        var confirmed = await h.A.Repair.ApplyRepairAsync(plan, await FetchAsync(h.B, plan));
        // Block 0's bytes here are bad: no replica confirms them.
        Assert.Equal((31L, 1L), (confirmed.Repaired, confirmed.Refused));
        Assert.Contains("a majority of the replica set must agree", confirmed.Refusal);

        var rest = await h.A.Repair.PlanRepairAsync(h.Volume, 0, Length);
        var block = Assert.Single(rest.Blocks);
        Assert.True(block.Unchecked);
        var b = await FetchAsync(h.B, rest);
        var c = await FetchAsync(h.C, rest);
        var forgedC = c with { Data = TempLog.Pattern(LogStore.BlockSize, 98) };
        foreach (var (copies, why) in new[]
                 {
                     (new[] { b }, "a majority of the 3 replicas (2) must agree"),
                     (new[] { b, forgedC }, "do not agree in a majority"),
                     // A copy of another version (its host ahead of this one and written the range since) does not count.
                     (new[] { b, c with { NewestSourceLsn = rest.HeadLsn + 1, HeadLsn = rest.HeadLsn + 1 } }, "a majority of the 3 replicas (2) must agree"),
                 })
        {
            var refused = await h.A.Repair.ApplyAgreedRepairAsync(rest, copies);
            Assert.Equal((0L, 1L), (refused.Repaired, refused.Refused));
            Assert.Contains(why, refused.Refusal);
            await Assert.ThrowsAsync<DataCorruptionException>(() => ThreeHosts.Read(h.A, h.Volume, 0, LogStore.BlockSize));
        }

        var agreed = await h.A.Repair.ApplyAgreedRepairAsync(rest, [b, c]);
        Assert.Equal((1L, 0L, (string?)null), (agreed.Repaired, agreed.Refused, agreed.Refusal));
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 0, Length));
        Assert.False(h.A.GetVolume(h.Volume)!.IsDamaged);

        await h.ReopenAsync(0, crash: true);
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 0, Length));
    }
}
