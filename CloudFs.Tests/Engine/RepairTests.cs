// Repair from a replica in the engine: a bad block is restored from a replica's copy of the same version, checked against
// this host's own checksum; wrong bytes, a copy from another chain or a newer copy are refused; a repair survives a crash.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class RepairTests
{
    private const long Bad = 12 << 10;

    /// <summary>Three hosts holding one volume with 64 KiB of data at 0 (all shipped), and a flipped byte in A's block at <see cref="Bad"/>.</summary>
    private static async Task<(ThreeHosts Hosts, byte[] Data)> DamagedOnAAsync()
    {
        var h = await ThreeHosts.StartAsync();
        var data = TempLog.Pattern(64 << 10, 11);
        await h.A.WriteAsync(h.Volume, 0, data, durable: true);
        var lsn = h.B.GetVolume(h.Volume)!.Lsn;
        await ThreeHosts.Ship(h.A, h.Volume, lsn, h.B);
        await ThreeHosts.Ship(h.A, h.Volume, lsn, h.C);
        var at = h.A.DeviceOffsetOf(h.Volume, Bad);
        await h.CloseAsync(0);
        h.LogA.FlipBit(at + 33, 1);
        await h.OpenAsync(0);
        return (h, data);
    }

    private static async Task<ReplicaBlocks> FetchAsync(LogStore replica, RepairPlan plan) =>
        await replica.Repair.ReadForRepairAsync(plan.Volume, plan.FetchOffset, plan.FetchLength, plan.HeadLsn, plan.HeadVersion);

    [Fact]
    public async Task A_bad_block_is_restored_from_a_replica_and_its_damage_cleared()
    {
        var (h, data) = await DamagedOnAAsync();
        await using var _ = h;
        await h.A.Scrubber.ScrubAsync(new ScrubOptions());
        Assert.True(h.A.GetVolume(h.Volume)!.IsDamaged);

        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, 64 << 10);
        var block = Assert.Single(plan.Blocks);
        Assert.Equal(Bad / 512, block.Block);
        var outcome = await h.A.Repair.ApplyRepairAsync(plan, await FetchAsync(h.B, plan));

        Assert.Equal((1L, 0L), (outcome.Repaired, outcome.Refused));
        Assert.False(h.A.GetVolume(h.Volume)!.IsDamaged);
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 0, data.Length));
        Assert.Equal(0, (await h.A.Scrubber.ScrubAsync(new ScrubOptions())).BadBlocks);
        // The volume's own chain is untouched: same head, same version as the replicas.
        Assert.Equal(h.B.GetVolume(h.Volume)!.CurrentVersion, h.A.GetVolume(h.Volume)!.CurrentVersion);
    }

    [Fact]
    public async Task A_replica_that_sends_wrong_bytes_is_refused_and_the_damage_stays()
    {
        var (h, _) = await DamagedOnAAsync();
        await using var _ = h;
        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, 64 << 10);
        var honest = await FetchAsync(h.B, plan);
        var forged = honest.Data.ToArray();
        forged[5] ^= 0x40;

        var outcome = await h.A.Repair.ApplyRepairAsync(plan, honest with { Data = forged });

        Assert.Equal((0L, 1L), (outcome.Repaired, outcome.Refused));
        Assert.Contains("does not match this host's checksum", outcome.Refusal);
        Assert.True(h.A.GetVolume(h.Volume)!.IsDamaged);
        await Assert.ThrowsAsync<DataCorruptionException>(() => ThreeHosts.Read(h.A, h.Volume, Bad, 512));
    }

    [Fact]
    public async Task A_copy_from_another_chain_or_written_after_the_common_version_is_refused()
    {
        var (h, _) = await DamagedOnAAsync();
        await using var _ = h;
        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, 64 << 10);
        var honest = await FetchAsync(h.B, plan);

        var foreign = await h.A.Repair.ApplyRepairAsync(plan, honest with { HoldsAskerHead = false });
        Assert.Contains("does not hold this host's head", foreign.Refusal);
        var behindElsewhere = await h.A.Repair.ApplyRepairAsync(plan, honest with { HeadLsn = plan.HeadLsn - 1, HeadVersion = Id160.Random() });
        Assert.Contains("is not on this host's chain", behindElsewhere.Refusal);
        var newer = await h.A.Repair.ApplyRepairAsync(plan, honest with { NewestSourceLsn = plan.HeadLsn + 1 });
        Assert.Contains("after lsn", newer.Refusal);

        Assert.All(new[] { foreign, behindElsewhere, newer }, o => Assert.Equal(0, o.Repaired));
        Assert.True(h.A.GetVolume(h.Volume)!.IsDamaged);
    }

    [Fact]
    public async Task A_replica_behind_the_damaged_host_can_still_repair_blocks_it_holds()
    {
        var (h, data) = await DamagedOnAAsync();
        await using var _ = h;
        // A moves on (another range); B has not received it.
        await h.A.WriteAsync(h.Volume, 512 << 10, TempLog.Pattern(4096, 12));
        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, 64 << 10);
        var fromB = await FetchAsync(h.B, plan);
        Assert.True(fromB.HeadLsn < plan.HeadLsn);

        var outcome = await h.A.Repair.ApplyRepairAsync(plan, fromB);

        Assert.Equal(1, outcome.Repaired);
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 0, data.Length));
    }

    [Fact]
    public async Task A_repair_replayed_after_a_crash_clears_damage_a_checkpoint_still_lists()
    {
        var (h, data) = await DamagedOnAAsync();
        await using var _ = h;
        await h.A.Scrubber.ScrubAsync(new ScrubOptions());
        await h.A.Checkpoints.WriteAsync();   // the checkpoint lists the damage
        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, 64 << 10);
        Assert.Equal(1, (await h.A.Repair.ApplyRepairAsync(plan, await FetchAsync(h.B, plan))).Repaired);
        await h.A.FlushAsync();

        await h.ReopenAsync(0, crash: true);

        Assert.False(h.A.GetVolume(h.Volume)!.IsDamaged);
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 0, data.Length));
    }

    [Fact]
    public async Task A_replica_whose_own_copy_is_bad_does_not_serve_it()
    {
        var (h, _) = await DamagedOnAAsync();
        await using var _ = h;
        var at = h.B.DeviceOffsetOf(h.Volume, Bad);
        await h.CloseAsync(1);
        h.LogB.FlipBit(at + 1);
        await h.OpenAsync(1);
        var plan = await h.A.Repair.PlanRepairAsync(h.Volume, 0, 64 << 10);

        await Assert.ThrowsAsync<DataCorruptionException>(() => FetchAsync(h.B, plan));
        Assert.True(h.B.GetVolume(h.Volume)!.IsDamaged);
        Assert.Equal(1, (await h.A.Repair.ApplyRepairAsync(plan, await FetchAsync(h.C, plan))).Repaired);
    }

    [Fact]
    public async Task Digests_of_equal_copies_agree_and_a_damaged_copy_names_its_range_unreadable()
    {
        var (h, _) = await DamagedOnAAsync();
        await using var _ = h;
        var b = await h.B.Scrubber.DigestAsync(h.Volume, 64 << 10);
        var c = await h.C.Scrubber.DigestAsync(h.Volume, 64 << 10);
        var a = await h.A.Scrubber.DigestAsync(h.Volume, 64 << 10);

        Assert.Equal(ThreeHosts.VolumeBytes / (64 << 10), b.Count);
        Assert.Equal(b.Digests, c.Digests);
        Assert.Empty(b.Unreadable);
        Assert.Equal([0], a.Unreadable);
        Assert.Equal(b.DigestOf(1).ToArray(), a.DigestOf(1).ToArray());
        // Zeros written where there was nothing read alike: the digest does not change.
        await h.A.WriteAsync(h.Volume, 768 << 10, new byte[4096]);
        var after = await h.A.Scrubber.DigestAsync(h.Volume, 64 << 10);
        Assert.True(after.Lsn > a.Lsn);
        Assert.Equal(a.Digests, after.Digests);
    }
}
