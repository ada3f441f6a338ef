// Re-replication of a long-lived volume: its primary compacted the history away, so the host that replaces a lost
// replica cannot stream it from lsn 0; it gets the volume by a full resync and then follows the primary as usual.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class ResyncClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const int VolumeSize = 8 << 20;

    [Fact]
    public async Task A_host_replacing_a_lost_replica_gets_a_compacted_volume_by_full_resync()
    {
        // Small segments, and compaction only when the test asks: the primary's first segments are reclaimed soon.
        await using var cluster = await TestCluster.StartAsync(4, "cloudfs.segment-size = 256KiB\ncloudfs.compaction.enabled = off\n");
        var created = await cluster[0].Management.Ask<IManagementMessage>(new CreateVolume(3, VolumeSize, VolumeMode.Async), Timeout) switch
        {
            VolumeCreated c => c,
            var other => throw new InvalidOperationException($"creation failed: {(other as CommandFailed)?.Reason ?? other.GetType().Name}"),
        };
        var volume = Id160.Parse(created.VolumeId);
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var holders = created.Hosts.Select(h => new CloudFsNodeRef(cluster.NodeOf(h.HostId))).ToArray();

        // Write and overwrite the first 2 MiB: most of the early segments turn dead.
        var model = new byte[VolumeSize];
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < 2 << 20; off += 256 << 10)
            {
                var d = new byte[256 << 10];
                new Random(round * 100 + off / 4096).NextBytes(d);
                await primary.Gateway.WriteAsync(volume, off, d, fua: round == 2 && off == (2 << 20) - (256 << 10));
                d.CopyTo(model, off);
            }
        var head = primary.Store.GetVolume(volume)!.Lsn;
        await HeadsAgree(volume, holders, head);

        // Once every replica acknowledged the head, the primary may compact its history away: lsn 0 no longer streams.
        await Eventually.Value(async () =>
        {
            await primary.Store.CompactAsync();
            try { await primary.Store.StreamAsync(volume, 0, Stream.Null, follow: false); return null; }
            catch (VersionCompactedException e) { return e; }
        }, Timeout, "the primary compacted the volume's first entries away");

        var outsider = cluster.Live.Single(n => created.Hosts.All(h => h.HostId != n.HostId.ToString()));
        var lost = created.Hosts[2].HostId;
        await cluster.CrashAsync(cluster.IndexOf(lost));

        // Past replace-after (3 s) the outsider joins the replica set: it can only get the volume by a full resync.
        var now = new[] { primary, outsider }.Select(n => new CloudFsNodeRef(n)).ToArray();
        await HeadsAgree(volume, now, head);
        await AssertBytes(volume, now, model);
        Assert.Throws<VersionCompactedException>(() => outsider.Store.VersionAt(volume, 1));
        var replicas = primary.Store.GetVolume(volume)!.Replicas.Select(r => r.ToString()).ToArray();
        Assert.Contains(outsider.HostId.ToString(), replicas);
        Assert.DoesNotContain(lost, replicas);

        // And it follows on: a later write reaches it by the ordinary stream.
        var late = new byte[64 << 10];
        new Random(99).NextBytes(late);
        await primary.Gateway.WriteAsync(volume, 6 << 20, late, fua: true);
        late.CopyTo(model, 6 << 20);
        await HeadsAgree(volume, now, primary.Store.GetVolume(volume)!.Lsn);
        await AssertBytes(volume, now, model);
    }

    private static Task HeadsAgree(Id160 volume, IEnumerable<CloudFsNodeRef> nodes, long atLeastLsn) =>
        Eventually.Until(() =>
        {
            var heads = nodes.Select(n => n.Node.Store.GetVolume(volume)).ToArray();
            return heads.All(h => h is not null && h.Lsn >= atLeastLsn) && heads.Select(h => h!.CurrentVersion).Distinct().Count() == 1;
        }, Timeout, $"every replica of {volume} at the same version, lsn ≥ {atLeastLsn}");

    private static async Task AssertBytes(Id160 volume, IEnumerable<CloudFsNodeRef> nodes, byte[] expected)
    {
        foreach (var n in nodes)
        {
            var back = new byte[expected.Length];
            await n.Node.Store.ReadAsync(volume, 0, back);
            Assert.True(expected.AsSpan().SequenceEqual(back), $"host {n.Node.HostId} holds other bytes");
        }
    }
}
