// Re-replication of a long-lived volume: its primary compacted the history away, so the host that replaces a lost
// replica cannot stream it from lsn 0; it gets the volume by a full resync and then follows the primary as usual. A
// protected version comes with it (the resync is as of the primary's history base), so a failover to it keeps it.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;
using CloudFs.Tests.Engine;

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
        var created = await cluster.CreateVolumeAsync(3, VolumeSize, VolumeMode.Async);
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
            try { await primary.Store.Streams.StreamAsync(volume, 0, Stream.Null, follow: false); return null; }
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

    [Fact]
    public async Task A_replica_installed_by_a_full_resync_keeps_the_protected_version_and_serves_it_after_a_failover_to_it()
    {
        // Nodes of their own loopback range; small segments and compaction only when the test asks.
        await using var cluster = await TestCluster.StartAsync(3, "cloudfs.segment-size = 256KiB\ncloudfs.compaction.enabled = off\n", authority: null, listen: "127.0.53.1");
        var created = await cluster.CreateVolumeAsync(2, VolumeSize, VolumeMode.Async);
        var volume = Id160.Parse(created.VolumeId);
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var holders = created.Hosts.Select(h => new CloudFsNodeRef(cluster.NodeOf(h.HostId))).ToArray();

        // History before the protected version, the version itself, then overwrites after it.
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < 2 << 20; off += 256 << 10)
                await primary.Gateway.WriteAsync(volume, off, TempLog.Pattern(256 << 10, round * 100 + off / 4096), fua: false);
        var image = new byte[VolumeSize];
        await primary.Gateway.WriteAsync(volume, 0, TempLog.Pattern(1 << 20, 7), fua: true);
        await primary.Store.ReadAsync(volume, 0, image);
        var kept = primary.Store.GetVolume(volume)!.CurrentVersion;
        await TestCluster.AskAsync<VolumeSummary>(primary, new ProtectVersion(kept.ToString(), Protect: true), Timeout);
        for (var off = 0; off < 2 << 20; off += 256 << 10)
            await primary.Gateway.WriteAsync(volume, off, TempLog.Pattern(256 << 10, 700 + off / 4096), fua: off == (2 << 20) - (256 << 10));
        await HeadsAgree(volume, holders, primary.Store.GetVolume(volume)!.Lsn);
        await Eventually.Value(async () =>
        {
            await primary.Store.CompactAsync();
            try { await primary.Store.Streams.StreamAsync(volume, 0, Stream.Null, follow: false); return null; }
            catch (VersionCompactedException e) { return e; }
        }, Timeout, "the primary compacted the entries before the protected version away");

        // The replica is lost; the outsider that replaces it can only get the volume by a full resync.
        var outsider = cluster.Live.Single(n => created.Hosts.All(h => h.HostId != n.HostId.ToString()));
        await cluster.CrashAsync(cluster.IndexOf(created.Hosts[1].HostId));
        var now = new[] { primary, outsider }.Select(n => new CloudFsNodeRef(n)).ToArray();
        await HeadsAgree(volume, now, primary.Store.GetVolume(volume)!.Lsn);
        Assert.Throws<VersionCompactedException>(() => outsider.Store.VersionAt(volume, 1));
        Assert.Equal([kept], outsider.Store.GetVolume(volume)!.Protected);

        var diff = await primary.Store.Streams.ChangedBetweenAsync(volume, kept);

        // The primary's device fails: the volume fails over to the resynced replica, which serves the protected version.
        // The failure shows at the primary's next write: a client's, through the resynced replica's node (its gateway
        // asks again while placement hands the volume over), inside what changed since the protected version already.
        cluster.Device(cluster.IndexOf(created.Hosts[0].HostId)).Fail(DeviceOp.Write);
        await outsider.Gateway.WriteAsync(volume, 0, TempLog.Pattern(4096, 900), fua: true);
        await Eventually.Until(() => outsider.Store.IsWritable(volume), TimeSpan.FromSeconds(60), "the resynced replica took the volume over");
        var back = new byte[VolumeSize];
        await outsider.Store.ReadVersionAsync(volume, kept, 0, back);
        Assert.True(image.AsSpan().SequenceEqual(back), "the new primary does not read the protected version as it was");
        Assert.Equal(diff.Ranges, (await outsider.Store.Streams.ChangedBetweenAsync(volume, kept)).Ranges);
        Assert.Equal([kept], outsider.Store.GetVolume(volume)!.Protected);
    }

    /// <param name="compacted">Whose history is compacted: the replicas' (the new primary cannot answer for the
    /// lsns the chains would be compared at) or the old primary's own (its suffix cannot be split off).</param>
    /// <param name="suffix">Writes only the old primary holds.</param>
    /// <param name="ahead">Whether the old primary's copy ends beyond the new primary's head when it returns.</param>
    [Theory]
    [InlineData("replicas", 3, false)]
    [InlineData("replicas", 12, true)]
    [InlineData("old primary", 3, false)]
    public async Task A_returning_primary_whose_suffix_cannot_be_compared_keeps_it_as_a_branch_before_the_full_resync(string compacted, int suffix, bool ahead)
    {
        // Four hosts (the fourth keeps the cluster up while the volume's three are down), no replacement of absent
        // replicas during the test, compaction only when asked.
        await using var cluster = await TestCluster.StartAsync(4,
            "cloudfs.segment-size = 256KiB\ncloudfs.compaction.enabled = off\ncloudfs.placement.replace-after = 10m\n");
        var created = await cluster.CreateVolumeAsync(3, VolumeSize, VolumeMode.Async);
        var volume = Id160.Parse(created.VolumeId);
        var (p, r1, r2) = (cluster.IndexOf(created.Hosts[0].HostId), cluster.IndexOf(created.Hosts[1].HostId), cluster.IndexOf(created.Hosts[2].HostId));
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < 2 << 20; off += 256 << 10)
                await cluster[p].Gateway.WriteAsync(volume, off, TempLog.Pattern(256 << 10, round * 100 + off / 4096), fua: round == 2 && off == (2 << 20) - (256 << 10));
        await HeadsAgree(volume, new[] { p, r1, r2 }.Select(i => new CloudFsNodeRef(cluster[i])), cluster[p].Store.GetVolume(volume)!.Lsn);
        // The shared history is compacted away (a replica keeps nothing back for others; the primary, nothing that
        // every replica holds durably).
        foreach (var r in compacted == "replicas" ? new[] { r1, r2 } : new[] { p })
        {
            var store = cluster[r].Store;
            await Eventually.Value(async () => (await store.CompactAsync()).SegmentsCompacted > 0 ? "compacted" : null, Timeout, $"host {store.HostId} compacted");
        }

        // Both replicas go down, and the primary acknowledges async writes alone: a suffix only it holds.
        await cluster.CrashAsync(r1);
        await cluster.CrashAsync(r2);
        for (var i = 0; i < suffix; i++) await cluster[p].Gateway.WriteAsync(volume, (4 << 20) + i * 4096L, TempLog.Pattern(4096, 500 + i), fua: i == suffix - 1);
        var suffixHead = cluster[p].Store.GetVolume(volume)!;
        var suffixCopy = new byte[VolumeSize];
        await cluster[p].Store.ReadAsync(volume, 0, suffixCopy);
        await cluster.CrashAsync(p);

        // The replicas return and one of them takes over (two of three hold shares), then writes past the old head.
        await cluster.RestartAsync(r1);
        await cluster.RestartAsync(r2);
        var survivor = cluster[r1];
        await Eventually.Value(async () => { await survivor.Gateway.WriteAsync(volume, 6 << 20, TempLog.Pattern(4096, 900), fua: true); return "written"; },
            TimeSpan.FromSeconds(60), "a write through a returned replica after the failover");
        var newPrimary = new[] { r1, r2 }.Select(i => cluster[i]).Single(n => n.Store.IsWritable(volume));
        for (var i = 0; !ahead && newPrimary.Store.GetVolume(volume)!.Lsn <= suffixHead.Lsn + 1; i++)
            await survivor.Gateway.WriteAsync(volume, (6 << 20) + i * 4096L, TempLog.Pattern(4096, 901 + i), fua: true);
        var newHead = newPrimary.Store.GetVolume(volume)!.Lsn;
        Assert.Equal(ahead, suffixHead.Lsn >= newHead);

        // The old primary returns. The new primary compacted the history the chains would be compared over, so nobody
        // can tell where they part: the old copy is kept whole as a branch, then replaced by a full resync.
        await cluster.RestartAsync(p);
        var holders = new[] { p, r1, r2 }.Select(i => new CloudFsNodeRef(cluster[i])).ToArray();
        await Eventually.Until(() => holders.All(h => h.Node.Store.GetVolume(volume)?.CurrentVersion == newPrimary.Store.GetVolume(volume)!.CurrentVersion),
            Timeout, "every replica at the new primary's version");
        Assert.False(cluster[p].Store.IsWritable(volume));
        Assert.Throws<VersionCompactedException>(() => cluster[p].Store.VersionAt(volume, 1));   // installed by a resync
        var branch = Assert.Single(cluster[p].Store.ListVolumes(), v => v.BranchedFrom == suffixHead.CurrentVersion);
        var back = new byte[VolumeSize];
        await cluster[p].Store.ReadAsync(branch.BaseId, 0, back);
        Assert.True(suffixCopy.AsSpan().SequenceEqual(back), "the branch does not read as the old primary's copy did");

        // The kept branch is a volume of the set like any other: the hosts that never held its suffix, and so cannot
        // apply its branch entry over their own copy, receive it whole.
        await Eventually.Until(() => new[] { r1, r2 }.All(i => cluster[i].Store.GetVolume(branch.BaseId)?.CurrentVersion == branch.CurrentVersion),
            Timeout, $"the kept branch {branch.BaseId} on every host of its replica set");
        foreach (var i in new[] { r1, r2 })
        {
            Array.Clear(back);
            await cluster[i].Store.ReadAsync(branch.BaseId, 0, back);
            Assert.True(suffixCopy.AsSpan().SequenceEqual(back), $"host {cluster[i].HostId} does not read the kept branch as the old primary's copy did");
        }
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
