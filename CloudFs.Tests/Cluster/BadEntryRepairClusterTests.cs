// Three in-process nodes (on 127.0.27.1) and a sync volume; on one replica a checkpoint covers an entry, then several bits
// of that entry's header flip (beyond one-bit correction) while the node is down. Recovery never reads the header again,
// so a read meets it: EIO, since the blocks' checksums were in that header. `cloudfs scrub`, the background scrub and a
// read that meets it on the primary fetch the whole entry of its lsn from another replica, check it against the chain and
// write its blocks back: the volume reads as the other replicas do and `verify --deep` finds them alike.
using Akka.Actor;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class BadEntryRepairClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const string Listen = "127.0.27.1";
    private const string Quiet = "cloudfs.checkpoint-interval = 1h\ncloudfs.compaction.interval = 1h\n";
    private const long BadAt = 1 << 20;

    private sealed record Damaged(TestCluster Cluster, Id160 Volume, CloudFsNode Node, CloudFsNode Other, byte[] Expected);

    private static Task<T> AskAsync<T>(CloudFsNode via, IManagementMessage request) where T : IManagementMessage =>
        TestCluster.AskAsync<T>(via, request, Timeout);

    /// <summary>
    /// Writes an entry and one over part of it; a replica checkpoints, crashes, its copy of the entry's header gets two
    /// flipped bits, and it restarts: its recovery starts after the entry, so nothing knows the header is bad yet.
    /// </summary>
    private static async Task<Damaged> SpoilACheckpointedHeaderAsync(TestCluster cluster, bool readFirst = true)
    {
        var created = await AskAsync<VolumeCreated>(cluster[0], new CreateVolume(3, 64 << 20, VolumeMode.Sync));
        var volume = Id160.Parse(created.VolumeId);
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var bad = TempLog.Pattern(16 << 10, 51);
        var over = TempLog.Pattern(4 << 10, 52);
        await primary.Gateway.WriteAsync(volume, BadAt, TempLog.Pattern(16 << 10, 50), fua: true);
        await primary.Gateway.WriteAsync(volume, BadAt, bad, fua: true);
        await primary.Gateway.WriteAsync(volume, BadAt + (4 << 10), over, fua: true);
        await primary.Gateway.WriteAsync(volume, 8 << 20, TempLog.Pattern(64 << 10, 53), fua: true);
        var head = primary.Store.GetVolume(volume)!.Lsn;
        await cluster.HeadsAgree(volume, head, Timeout);
        var expected = bad.ToArray();
        over.CopyTo(expected, 4 << 10);

        var replica = cluster.Live.First(n => n != primary);
        var index = cluster.IndexOf(replica.HostId.ToString());
        // 32 stored blocks: no CRC table sector, the header is the sector right before the data.
        var header = replica.Store.DeviceOffsetOf(volume, BadAt) - EntryHeader.Size;
        var device = replica.Options.DevicePath;
        await replica.Store.Checkpoints.WriteAsync();
        replica.Store.CloseWithoutCheckpoint();
        await cluster.CrashAsync(index);
        HeldLogFile.FlipBit(device, header + 120, 2);
        HeldLogFile.FlipBit(device, header + 121, 5);
        await cluster.RestartAsync(index);

        var damaged = cluster[index];
        Assert.Empty(damaged.Store.Restoration.LostEntries(volume));
        await cluster.HeadsAgree(volume, head, Timeout);
        if (readFirst)
        {
            var eio = await Assert.ThrowsAsync<DataCorruptionException>(async () => await damaged.Store.ReadAsync(volume, BadAt, new byte[4096]));
            Assert.Contains($"the entry header at log block {header / LogStore.BlockSize} fails its checksum", eio.Message);
            Assert.True(damaged.Store.GetVolume(volume)!.IsDamaged);
        }
        return new Damaged(cluster, volume, damaged, cluster.Live.First(n => n != damaged), expected);
    }

    private static async Task AssertRestoredAsync(Damaged d)
    {
        Assert.False(d.Node.Store.GetVolume(d.Volume)!.IsDamaged);
        Assert.Equal(1, d.Node.Replication.EntriesRestored);
        Assert.Equal(0, d.Node.Replication.RestoreEntriesRefused);
        // All but the 8 blocks the write after the entry replaced.
        Assert.Equal(24, d.Node.Replication.BlocksRepaired);
        foreach (var node in d.Cluster.Live)
        {
            var back = new byte[d.Expected.Length];
            await node.Store.ReadAsync(d.Volume, BadAt, back);
            Assert.Equal(d.Expected, back);
        }
        var verify = await AskAsync<VerifyReport>(d.Other, new VerifyVolume(d.Volume.ToString(), Deep: true));
        Assert.True(verify.Equal, string.Join("; ", verify.Replicas.Select(r => $"{r.HostId} at lsn {r.Lsn}: {r.Status}")
            .Concat(verify.Differences.Select(x => $"{x.Offset} {string.Join(",", x.Hosts)} {x.Why}"))) + verify.Note);
    }

    [Fact]
    public async Task Scrub_restores_the_blocks_of_an_entry_whose_header_went_bad_under_a_checkpoint_from_another_replica()
    {
        await using var cluster = await TestCluster.StartAsync(3, Quiet, authority: null, listen: Listen);
        var d = await SpoilACheckpointedHeaderAsync(cluster);

        var scrub = await AskAsync<ScrubReport>(d.Other, new ScrubVolumes(d.Volume.ToString()));

        Assert.True(scrub.Clean, string.Join("; ", scrub.Hosts.Select(h => h.Error).Concat(scrub.Ranges.Select(r => r.Reason))));
        // Every live block of the entry: around the 4 KiB the write after it replaced.
        Assert.Equal([(BadAt, 4096L), (BadAt + 8192, 8192L)], scrub.Ranges.Select(r => (r.Offset, r.Length)).ToArray());
        Assert.All(scrub.Ranges, r => Assert.Equal((d.Node.HostId.ToString(), "repaired"), (r.HostId, r.Status)));
        Assert.All(scrub.Ranges, r => Assert.Contains("fails its checksum", r.Reason));
        await AssertRestoredAsync(d);
    }

    [Fact]
    public async Task A_read_that_meets_an_entry_whose_header_went_bad_restores_it_from_another_replica()
    {
        await using var cluster = await TestCluster.StartAsync(3, Quiet, authority: null, listen: Listen);
        var d = await SpoilACheckpointedHeaderAsync(cluster);

        // What a volume's actor asks of its node's integrity agent when a read meets damage (docs/CLUSTER.md, "Reads").
        var agent = d.Node.System.ActorSelection(IntegrityAgent.Path);
        var repaired = await agent.Ask<RangeRepaired>(new RepairRange(d.Volume, BadAt, 4096, ForRead: true), Timeout);

        Assert.False(repaired.StillDamaged);
        Assert.Equal(1, d.Node.Replication.RepairReads);
        await AssertRestoredAsync(d);
    }

    [Fact]
    public async Task The_background_scrub_finds_an_entry_whose_header_went_bad_and_restores_it_from_another_replica()
    {
        // A pass every second, so the test need not wait a week.
        await using var cluster = await TestCluster.StartAsync(3, Quiet + "cloudfs.scrub { first-delay = 1s, interval = 1s, rate = 64MiB }\n", authority: null, listen: Listen);
        var d = await SpoilACheckpointedHeaderAsync(cluster, readFirst: false);

        await Eventually.Until(() => d.Node.Replication.EntriesRestored == 1 && !d.Node.Store.GetVolume(d.Volume)!.IsDamaged,
            Timeout, "the replica's background scrub found the bad header and restored the entry's blocks");
        await AssertRestoredAsync(d);
    }
}
