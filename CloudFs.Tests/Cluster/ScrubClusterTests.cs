// Three in-process nodes and a sync volume with bytes flipped in the logs of its hosts: a read through any node gets
// the right data (the primary restores the block from a replica), `cloudfs verify --deep` names the ranges that
// differ, `cloudfs scrub` reports and repairs them, and the replicas verify equal afterwards; a volume with one
// replica stays damaged, answers EIO for exactly that range and shows as damaged in `cloudfs ls`.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class ScrubClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static async Task<(Id160 Volume, CloudFsNode Primary)> CreateAsync(TestCluster cluster, int replicas)
    {
        var created = await cluster.CreateVolumeAsync(replicas, 64 << 20, VolumeMode.Sync);
        return (Id160.Parse(created.VolumeId), cluster.NodeOf(created.Hosts[0].HostId));
    }

    private static Task HeadsAgree(TestCluster cluster, Id160 volume, long lsn) =>
        Eventually.Until(() =>
        {
            var heads = cluster.Live.Select(n => n.Store.GetVolume(volume)).ToArray();
            return heads.All(h => h is not null && h.Lsn >= lsn) && heads.Select(h => h!.CurrentVersion).Distinct().Count() == 1;
        }, Timeout, $"every replica of {volume} at lsn {lsn}");

    /// <summary>Flips a bit of the stored block at <paramref name="offset"/> of the volume in <paramref name="node"/>'s log, under the running node.</summary>
    private static void Flip(CloudFsNode node, Id160 volume, long offset)
    {
        var at = node.Store.DeviceOffsetOf(volume, offset);
        Assert.True(at > 0, $"nothing stored at {offset} on host {node.HostId}");
        HeldLogFile.FlipBit(node.Options.DevicePath, at + 77, 4);
    }

    private static async Task<T> AskAsync<T>(CloudFsNode via, IManagementMessage request) where T : IManagementMessage =>
        await via.Management.Ask<IManagementMessage>(request, Timeout) switch
        {
            T answer => answer,
            var other => throw new InvalidOperationException($"{request.GetType().Name} failed: {(other as CommandFailed)?.Reason ?? other.GetType().Name}"),
        };

    [Fact]
    public async Task Flipped_bytes_are_served_right_named_by_verify_repaired_by_scrub_and_the_replicas_verify_equal()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var (volume, primary) = await CreateAsync(cluster, 3);
        var replica = cluster.Live.First(n => n != primary);
        var other = cluster.Live.First(n => n != primary && n != replica);
        var a = TempLog.Pattern(64 << 10, 1);
        var b = TempLog.Pattern(64 << 10, 2);
        var c = TempLog.Pattern(64 << 10, 3);
        await primary.Gateway.WriteAsync(volume, 0, a, fua: true);
        await primary.Gateway.WriteAsync(volume, 4 << 20, b, fua: true);
        await primary.Gateway.WriteAsync(volume, 8 << 20, c, fua: true);
        await HeadsAgree(cluster, volume, primary.Store.GetVolume(volume)!.Lsn);
        Flip(primary, volume, 4096);
        Flip(primary, volume, (4 << 20) + 8192);
        Flip(replica, volume, (8 << 20) + 512);

        // Reads through the other nodes reach the primary, which meets the bad block, restores it from a replica
        // (checked against its own checksum) and answers with the right bytes. Reads meeting it at once restore it once.
        var reads = Enumerable.Range(0, 4).Select(i => (Via: i % 2 == 0 ? other : replica, Into: new byte[a.Length])).ToArray();
        await Task.WhenAll(reads.Select(r => r.Via.Gateway.ReadAsync(volume, 0, r.Into).AsTask()));
        Assert.All(reads, r => Assert.Equal(a, r.Into));
        Assert.Equal(1, primary.Replication.RepairReads);
        Assert.Equal(1, primary.Replication.BlocksRepaired);
        var back = new byte[a.Length];

        // verify: the heads are equal; --deep reads every block and names the two ranges that are unreadable somewhere.
        var shallow = await AskAsync<VerifyReport>(other, new VerifyVolume(volume.ToString(), Deep: false));
        Assert.All(shallow.Replicas, r => Assert.Equal("equal", r.Status));
        var deep = await AskAsync<VerifyReport>(other, new VerifyVolume(volume.ToString(), Deep: true));
        Assert.False(deep.Equal);
        Assert.Null(deep.Note);
        Assert.Equal([(4L << 20, [primary.HostId.ToString()]), (8L << 20, [replica.HostId.ToString()])],
            deep.Differences.Select(d => (d.Offset, d.Hosts)).ToArray());
        Assert.All(deep.Differences, d => Assert.Equal("unreadable there", d.Why));

        // scrub: every host reads its log, finds its bad block and restores it from another replica.
        var scrub = await AskAsync<ScrubReport>(other, new ScrubVolumes(null));
        Assert.True(scrub.Clean, string.Join("; ", scrub.Hosts.Select(h => h.Error).Concat(scrub.Ranges.Select(r => r.Reason))));
        Assert.Equal(3, scrub.Hosts.Length);
        Assert.Equal([(primary.HostId.ToString(), (4L << 20) + 8192), (replica.HostId.ToString(), (8L << 20) + 512)],
            scrub.Ranges.Select(r => (r.HostId, r.Offset)).OrderBy(r => r.Item2).ToArray());
        Assert.All(scrub.Ranges, r => Assert.Equal(("repaired", 512L), (r.Status, r.Length)));

        var after = await AskAsync<VerifyReport>(other, new VerifyVolume(volume.ToString(), Deep: true));
        Assert.True(after.Equal, string.Join("; ", after.Differences.Select(d => $"{d.Offset} {string.Join(",", d.Hosts)} {d.Why}")) + after.Note);
        foreach (var (offset, data) in new[] { (4L << 20, b), (8L << 20, c) })
        {
            await other.Gateway.ReadAsync(volume, offset, back);
            Assert.Equal(data, back);
            await replica.Store.ReadAsync(volume, offset, back);
            Assert.Equal(data, back);
        }
        var list = await AskAsync<VolumeList>(other, new ListVolumes());
        Assert.Equal(VolumeHealth.Healthy, Assert.Single(list.Volumes, v => v.Id == volume.ToString()).Health);
    }

    [Fact]
    public async Task The_background_scrub_finds_a_bad_block_on_a_replica_and_restores_it_from_another()
    {
        // A pass every second at 64 MiB/s, so the test need not wait a week.
        await using var cluster = await TestCluster.StartAsync(3, "cloudfs.scrub { first-delay = 1s, interval = 1s, rate = 64MiB }\n");
        var (volume, primary) = await CreateAsync(cluster, 3);
        var replica = cluster.Live.First(n => n != primary);
        var data = TempLog.Pattern(64 << 10, 5);
        await primary.Gateway.WriteAsync(volume, 0, data, fua: true);
        await HeadsAgree(cluster, volume, primary.Store.GetVolume(volume)!.Lsn);
        var bad = replica.Store.Scrubber.Stats.BadBlocks;
        Flip(replica, volume, 32 << 10);

        await Eventually.Until(() => replica.Replication.BlocksRepaired == 1 && replica.Store.Scrubber.Stats.BadBlocks > bad && !replica.Store.GetVolume(volume)!.IsDamaged,
            Timeout, "the replica's background scrub found the block and restored it");
        var back = new byte[data.Length];
        await replica.Store.ReadAsync(volume, 0, back);
        Assert.Equal(data, back);
        Assert.True(replica.Store.Scrubber.Stats.Passes > 0);
    }

    [Fact]
    public async Task A_volume_with_one_replica_stays_damaged_fails_exactly_that_range_and_shows_damaged()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var (volume, node) = await CreateAsync(cluster, 1);
        var data = TempLog.Pattern(64 << 10, 4);
        await node.Gateway.WriteAsync(volume, 0, data, fua: true);
        Flip(node, volume, 16 << 10);

        var scrub = await AskAsync<ScrubReport>(node, new ScrubVolumes(volume.ToString()));

        Assert.False(scrub.Clean);
        var range = Assert.Single(scrub.Ranges);
        Assert.Equal((16L << 10, 512L, "damaged"), (range.Offset, range.Length, range.Status));
        Assert.Contains("no other replica", range.Reason);
        var ex = await Assert.ThrowsAsync<DataCorruptionException>(async () => await node.Gateway.ReadAsync(volume, 0, new byte[64 << 10]));
        Assert.Equal((16L << 10, 512L), (ex.Offset, ex.Length));
        var before = new byte[16 << 10];
        await node.Gateway.ReadAsync(volume, 0, before);
        Assert.Equal(data.AsSpan(0, 16 << 10).ToArray(), before);
        var rest = new byte[(48 << 10) - 512];
        await node.Gateway.ReadAsync(volume, (16 << 10) + 512, rest);
        Assert.Equal(data.AsSpan((16 << 10) + 512).ToArray(), rest);
        var list = await AskAsync<VolumeList>(node, new ListVolumes());
        Assert.Equal(VolumeHealth.Damaged, Assert.Single(list.Volumes).Health);
    }
}
