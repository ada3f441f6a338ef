// Three in-process nodes and a sync volume; one replica crashes before a checkpoint covers its newest entries and comes
// back with several bits of one entry's header flipped (beyond one-bit correction) and durable entries after it: its
// recovery skips the entry and the volume is damaged there. `cloudfs scrub` (or a read that meets the damage) fetches
// the whole entry from another replica, checks it against the chain and writes it back: the volume reads as the other
// replicas do, `verify --deep` finds them alike and `cloudfs ls` shows it healthy again.
using Akka.Actor;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class LostEntryRepairClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    // No checkpoint but the one a clean stop writes (the crash below skips it), so recovery walks the entries.
    private const string NoCheckpoints = "cloudfs.checkpoint-interval = 1h\ncloudfs.compaction.interval = 1h\n";
    private const long LostAt = 1 << 20;

    private sealed record Damaged(TestCluster Cluster, Id160 Volume, CloudFsNode Node, CloudFsNode Other, byte[] Expected, long LostLsn);

    private static Task<T> AskAsync<T>(CloudFsNode via, IManagementMessage request) where T : IManagementMessage =>
        TestCluster.AskAsync<T>(via, request, Timeout);

    /// <summary>
    /// Writes an entry, then durable entries after it (one over part of it); a replica crashes without a checkpoint, its
    /// copy of the entry's header gets eight flipped bits, and it restarts: its recovery skips that entry.
    /// </summary>
    private static async Task<Damaged> LoseAnEntryOnAReplicaAsync(TestCluster cluster)
    {
        var created = await AskAsync<VolumeCreated>(cluster[0], new CreateVolume(3, 64 << 20, VolumeMode.Sync));
        var volume = Id160.Parse(created.VolumeId);
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var lost = TempLog.Pattern(16 << 10, 31);
        var over = TempLog.Pattern(4 << 10, 32);
        await primary.Gateway.WriteAsync(volume, 0, TempLog.Pattern(64 << 10, 30), fua: true);
        await primary.Gateway.WriteAsync(volume, LostAt, lost, fua: true);
        var lostLsn = primary.Store.GetVolume(volume)!.Lsn;
        await primary.Gateway.WriteAsync(volume, LostAt + (4 << 10), over, fua: true);
        await primary.Gateway.WriteAsync(volume, 8 << 20, TempLog.Pattern(64 << 10, 33), fua: true);
        await cluster.HeadsAgree(volume, lostLsn + 2, Timeout);
        var expected = lost.ToArray();
        over.CopyTo(expected, 4 << 10);

        var replica = cluster.Live.First(n => n != primary);
        var index = cluster.IndexOf(replica.HostId.ToString());
        // 32 stored blocks: no CRC table sector, the header is the sector right before the data.
        var header = replica.Store.DeviceOffsetOf(volume, LostAt) - EntryHeader.Size;
        var device = replica.Options.DevicePath;
        replica.Store.CloseWithoutCheckpoint();
        await cluster.CrashAsync(index);
        for (var bit = 0; bit < 8; bit++) HeldLogFile.FlipBit(device, header + EntryHeader.OffVolume + 3 * bit, bit);
        await cluster.RestartAsync(index);

        var damaged = cluster[index];
        Assert.Equal(lostLsn, Assert.Single(damaged.Store.Restoration.LostEntries(volume)).FirstLsn);
        Assert.True(damaged.Store.GetVolume(volume)!.IsDamaged);
        await cluster.HeadsAgree(volume, lostLsn + 2, Timeout);
        await Assert.ThrowsAsync<DataCorruptionException>(async () => await damaged.Store.ReadAsync(volume, LostAt, new byte[4096]));
        return new Damaged(cluster, volume, damaged, cluster.Live.First(n => n != damaged), expected, lostLsn);
    }

    private static async Task AssertRestoredAsync(Damaged d)
    {
        Assert.Empty(d.Node.Store.Restoration.LostEntries(d.Volume));
        Assert.False(d.Node.Store.GetVolume(d.Volume)!.IsDamaged);
        Assert.Equal(1, d.Node.Replication.EntriesRestored);
        Assert.Equal(0, d.Node.Replication.RestoreEntriesRefused);
        foreach (var node in d.Cluster.Live)
        {
            var back = new byte[d.Expected.Length];
            await node.Store.ReadAsync(d.Volume, LostAt, back);
            Assert.Equal(d.Expected, back);
        }
        var verify = await AskAsync<VerifyReport>(d.Other, new VerifyVolume(d.Volume.ToString(), Deep: true));
        Assert.True(verify.Equal, string.Join("; ", verify.Differences.Select(x => $"{x.Offset} {string.Join(",", x.Hosts)} {x.Why}")) + verify.Note);
        // Healthy once placement's next rounds see it (the restarted replica's follower may still be catching up).
        await Eventually.Value(async () =>
        {
            var list = await AskAsync<VolumeList>(d.Other, new ListVolumes());
            return Assert.Single(list.Volumes, v => v.Id == d.Volume.ToString()).Health == VolumeHealth.Healthy ? "healthy" : null;
        }, Timeout, "the volume listed as healthy");
    }

    [Fact]
    public async Task Scrub_restores_an_entry_whose_header_recovery_could_not_read_from_another_replica()
    {
        await using var cluster = await TestCluster.StartAsync(3, NoCheckpoints);
        var d = await LoseAnEntryOnAReplicaAsync(cluster);
        await Eventually.Value(async () =>
        {
            var list = await AskAsync<VolumeList>(d.Other, new ListVolumes());
            return Assert.Single(list.Volumes, v => v.Id == d.Volume.ToString()).Health == VolumeHealth.Damaged ? "damaged" : null;
        }, Timeout, "the volume listed as damaged");

        var scrub = await AskAsync<ScrubReport>(d.Other, new ScrubVolumes(d.Volume.ToString()));

        Assert.True(scrub.Clean, string.Join("; ", scrub.Hosts.Select(h => h.Error).Concat(scrub.Ranges.Select(r => r.Reason))));
        // The damage was everything no entry after the lost one wrote: the volume less the two writes after it.
        Assert.All(scrub.Ranges, r => Assert.Equal((d.Node.HostId.ToString(), "repaired"), (r.HostId, r.Status)));
        Assert.All(scrub.Ranges, r => Assert.Contains($"lsn {d.LostLsn}..{d.LostLsn} were lost", r.Reason));
        Assert.Equal((64L << 20) - (4 << 10) - (64 << 10), scrub.Ranges.Sum(r => r.Length));
        await AssertRestoredAsync(d);
    }

    [Fact]
    public async Task A_read_that_meets_a_lost_entry_restores_it_from_another_replica()
    {
        await using var cluster = await TestCluster.StartAsync(3, NoCheckpoints);
        var d = await LoseAnEntryOnAReplicaAsync(cluster);

        // What a volume's actor asks of its node's integrity agent when a read meets damage (docs/CLUSTER.md, "Reads").
        var agent = d.Node.System.ActorSelection(IntegrityAgent.Path);
        var repaired = await agent.Ask<RangeRepaired>(new RepairRange(d.Volume, LostAt, d.Expected.Length, ForRead: true), Timeout);

        Assert.False(repaired.StillDamaged);
        Assert.Equal(1, d.Node.Replication.RepairReads);
        await AssertRestoredAsync(d);
    }
}
