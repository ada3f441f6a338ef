// Three in-process nodes (on 127.0.31.1) and a sync volume; on one replica compaction copies an entry's live blocks into
// a Relocation entry, then (the node down, a checkpoint covering it) several bits of that relocation's header flip. Its
// lsn and its blocks' checksums were only in that header, so nothing on the host checks them: `cloudfs scrub` fetches
// the range from another replica, whose verified copy confirms the host's own bytes, and writes them back under a good
// header; a read that meets it (the read repair) does the same. The volume then reads as the other replicas do and
// `verify --deep` finds them alike.
using Akka.Actor;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class RelocatedEntryRepairClusterTests
{
    // A scrub waits for its repairs' fdatasyncs: on a disk other work keeps busy they can take long.
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private const string Listen = "127.0.31.1";
    // Small segments, so a few writes fill one and compaction (asked for, never on a timer) moves what is live in it.
    private const string Config = "cloudfs.checkpoint-interval = 1h\ncloudfs.compaction.interval = 1h\ncloudfs.segment-size = 256KiB\n";
    private const long BadAt = 1 << 20;
    private const int Length = 16 << 10;

    private static Task<T> AskAsync<T>(CloudFsNode via, IManagementMessage request) where T : IManagementMessage =>
        TestCluster.AskAsync<T>(via, request, Timeout);

    private sealed record Spoiled(TestCluster Cluster, Id160 Volume, CloudFsNode Node, CloudFsNode Other, byte[] Data);

    /// <summary>
    /// Writes 16 KiB at <see cref="BadAt"/> and fills the segment with overwrites of another range; on a replica,
    /// compaction copies the 16 KiB into a Relocation entry, a checkpoint covers it, the node crashes, two bits of the
    /// relocation's header flip, and it restarts: a read of the range there fails its checksum.
    /// </summary>
    private static async Task<Spoiled> RelocateAndSpoilAsync(TestCluster cluster)
    {
        var created = await AskAsync<VolumeCreated>(cluster[0], new CreateVolume(3, 64 << 20, VolumeMode.Sync));
        var volume = Id160.Parse(created.VolumeId);
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var data = TempLog.Pattern(Length, 80);
        await primary.Gateway.WriteAsync(volume, BadAt, data, fua: true);
        // Overwrites of another range fill the segment with dead entries.
        for (var i = 0; i < 20; i++) await primary.Gateway.WriteAsync(volume, 8 << 20, TempLog.Pattern(Length, 81 + i), fua: true);
        var head = primary.Store.GetVolume(volume)!.Lsn;
        await cluster.HeadsAgree(volume, head, Timeout);

        var replica = cluster.Live.First(n => n != primary);
        var index = cluster.IndexOf(replica.HostId.ToString());
        var written = replica.Store.DeviceOffsetOf(volume, BadAt);
        await replica.Store.CompactAsync();
        // 32 blocks in one Relocation entry: no CRC table sector, the header is the sector right before the data.
        var header = replica.Store.DeviceOffsetOf(volume, BadAt) - EntryHeader.Size;
        Assert.NotEqual(written, header + EntryHeader.Size);
        var device = replica.Options.DevicePath;
        await replica.Store.Checkpoints.WriteAsync();
        replica.Store.CloseWithoutCheckpoint();
        await cluster.CrashAsync(index);
        HeldLogFile.FlipBit(device, header + 120, 2);
        HeldLogFile.FlipBit(device, header + 121, 5);
        await cluster.RestartAsync(index);
        var damaged = cluster[index];
        await cluster.HeadsAgree(volume, head, Timeout);
        await Assert.ThrowsAsync<DataCorruptionException>(async () => await damaged.Store.ReadAsync(volume, BadAt, new byte[Length]));
        return new Spoiled(cluster, volume, damaged, cluster.Live.First(n => n != damaged), data);
    }

    private static async Task AssertRepairedAsync(Spoiled s)
    {
        Assert.False(s.Node.Store.GetVolume(s.Volume)!.IsDamaged);
        Assert.Equal(Length / LogStore.BlockSize, s.Node.Replication.BlocksRepaired);
        foreach (var node in s.Cluster.Live)
        {
            var back = new byte[Length];
            await node.Store.ReadAsync(s.Volume, BadAt, back);
            Assert.Equal(s.Data, back);
        }
        var verify = await AskAsync<VerifyReport>(s.Other, new VerifyVolume(s.Volume.ToString(), Deep: true));
        Assert.True(verify.Equal, string.Join("; ", verify.Differences.Select(x => $"{x.Offset} {string.Join(",", x.Hosts)} {x.Why}")) + verify.Note);
    }

    [Fact]
    public async Task Scrub_repairs_a_relocated_entry_whose_header_went_bad_from_another_replicas_copy()
    {
        await using var cluster = await TestCluster.StartAsync(3, Config, authority: null, listen: Listen);
        var s = await RelocateAndSpoilAsync(cluster);

        var scrub = await AskAsync<ScrubReport>(s.Other, new ScrubVolumes(s.Volume.ToString()));

        Assert.True(scrub.Clean, string.Join("; ", scrub.Hosts.Select(h => h.Error).Concat(scrub.Ranges.Select(r => $"{r.Status}: {r.Reason}"))));
        Assert.Equal([(BadAt, (long)Length)], scrub.Ranges.Select(r => (r.Offset, r.Length)).ToArray());
        Assert.All(scrub.Ranges, r => Assert.Equal((s.Node.HostId.ToString(), "repaired"), (r.HostId, r.Status)));
        await AssertRepairedAsync(s);
    }

    [Fact]
    public async Task A_read_that_meets_a_relocated_entry_whose_header_went_bad_repairs_it_from_another_replica()
    {
        await using var cluster = await TestCluster.StartAsync(3, Config, authority: null, listen: Listen);
        var s = await RelocateAndSpoilAsync(cluster);

        // What a volume's actor asks of its node's integrity agent when a read meets damage (docs/CLUSTER.md, "Reads").
        var agent = s.Node.System.ActorSelection(IntegrityAgent.Path);
        var repaired = await agent.Ask<RangeRepaired>(new RepairRange(s.Volume, BadAt, Length, ForRead: true), Timeout);

        Assert.False(repaired.StillDamaged);
        Assert.Equal(1, s.Node.Replication.RepairReads);
        await AssertRepairedAsync(s);
    }
}
