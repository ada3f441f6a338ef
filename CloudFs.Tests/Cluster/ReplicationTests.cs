// Three in-process nodes: placement of a 3-replica volume, replicas following the primary in both modes, writes
// through any node, failover when the primary's host dies, and the old primary catching up when it returns.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

/// <summary>Three nodes for the tests that only create volumes and write them (no crash, no stopped actor).</summary>
public sealed class ThreeNodes : IAsyncLifetime
{
    internal TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(3);

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}

[Collection(nameof(ClusterCollection))]
public sealed class ReplicationTests(ThreeNodes shared) : IClassFixture<ThreeNodes>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static Task HeadsAgree(TestCluster cluster, Id160 volume, IEnumerable<CloudFsNodeRef> nodes, long atLeastLsn) =>
        Eventually.Until(() =>
        {
            var heads = nodes.Select(n => n.Node.Store.GetVolume(volume)).ToArray();
            return heads.All(h => h is not null && h.Lsn >= atLeastLsn) && heads.Select(h => h!.CurrentVersion).Distinct().Count() == 1;
        }, Timeout, $"every replica of {volume} at the same version, lsn ≥ {atLeastLsn}");

    private static async Task AssertBytes(Id160 volume, IEnumerable<CloudFsNodeRef> nodes, long offset, byte[] expected)
    {
        foreach (var n in nodes)
        {
            var back = new byte[expected.Length];
            await n.Node.Store.ReadAsync(volume, offset, back);
            Assert.True(expected.AsSpan().SequenceEqual(back), $"host {n.Node.HostId} holds other bytes at {offset}");
        }
    }

    [Fact]
    public Task Newdisk_3_places_one_replica_per_host_and_every_replica_follows_the_primary() =>
        EveryReplicaFollowsThePrimary(shared.Cluster);

    /// <summary>The scenario of the test above on any 3-node cluster (TlsClusterTests runs it with TLS).</summary>
    internal static async Task EveryReplicaFollowsThePrimary(TestCluster cluster)
    {
        foreach (var mode in new[] { VolumeMode.Sync, VolumeMode.Async })
        {
            var created = await cluster.CreateVolumeAsync(3, 64 << 20, mode);
            var volume = Id160.Parse(created.VolumeId);
            Assert.Equal(3, created.Hosts.Select(h => h.HostId).Distinct().Count());
            var all = cluster.Live.Select(n => new CloudFsNodeRef(n)).ToArray();
            var primary = cluster.NodeOf(created.Hosts[0].HostId);
            Assert.True(primary.Store.IsWritable(volume));
            Assert.All(all.Where(n => n.Node != primary), n => Assert.False(n.Node.Store.IsWritable(volume)));

            // Written through a node that is not the primary: the write travels to the primary, then to every replica.
            var other = cluster.Live.First(n => n != primary);
            var data = Pattern(3 << 20, 7);
            await other.Gateway.WriteAsync(volume, 1 << 20, data, fua: true);
            await HeadsAgree(cluster, volume, all, 3);
            await AssertBytes(volume, all, 1 << 20, data);

            var back = new byte[data.Length];
            await other.Gateway.ReadAsync(volume, 1 << 20, back);
            Assert.Equal(data, back);

            var list = Assert.IsType<VolumeList>(await cluster[1].Management.Ask<IManagementMessage>(new ListVolumes(), Timeout));
            var line = Assert.Single(list.Volumes, v => v.Id == created.VolumeId);
            Assert.Equal(primary.HostId.ToString(), line.Primary);
            Assert.Equal(3, line.Replicas.Count);
            Assert.Equal(mode, line.Mode);
        }
    }

    [Fact]
    public async Task A_replica_acknowledges_once_per_chunk_it_writes_not_once_per_entry()
    {
        var cluster = shared.Cluster;
        var created = await cluster.CreateVolumeAsync(3, 64 << 20, VolumeMode.Sync);
        var volume = Id160.Parse(created.VolumeId);
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var replicas = cluster.Live.Where(n => n != primary).ToArray();
        var before = replicas.ToDictionary(n => n.HostId, n => (n.Replication.AcksSent, n.Replication.ChunksReceived));
        var fed = (primary.Replication.FeedChunks, primary.Replication.FeedEntries);

        // 256 sync writes in flight at once: the primary appends them in a few group commits, so each feed chunk
        // carries many entries.
        var writes = Enumerable.Range(0, 256).Select(i => primary.Gateway.WriteAsync(volume, i * 4096L, Pattern(4096, i), fua: false).AsTask());
        await Task.WhenAll(writes);
        var head = primary.Store.GetVolume(volume)!.Lsn;
        await HeadsAgree(cluster, volume, cluster.Live.Select(n => new CloudFsNodeRef(n)), head);

        var chunks = primary.Replication.FeedChunks - fed.FeedChunks;
        var entries = primary.Replication.FeedEntries - fed.FeedEntries;
        Assert.True(entries >= 2 * 256, $"the primary fed {entries} entries to its two replicas (expected at least 512)");
        Assert.True(entries >= 4 * chunks, $"{entries} entries in {chunks} chunks: the feed did not batch, so this test cannot tell per-chunk from per-entry acknowledgements");
        foreach (var r in replicas)
        {
            var acks = r.Replication.AcksSent - before[r.HostId].AcksSent;
            var received = r.Replication.ChunksReceived - before[r.HostId].ChunksReceived;
            // One per chunk written, plus one per flush that made more durable (the 1 s pacing, a few at most here).
            Assert.True(acks <= received + 8, $"replica {r.HostId} sent {acks} acknowledgements for {received} chunks ({entries / 2} entries)");
            Assert.True(acks > 0, $"replica {r.HostId} acknowledged nothing");
        }
    }

    [Fact]
    public async Task Asking_for_more_replicas_than_live_hosts_fails_and_creates_nothing()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var reply = await cluster[0].Management.Ask<IManagementMessage>(new CreateVolume(3, 64 << 20, VolumeMode.Sync), Timeout);
        Assert.Equal("only 2 host(s) found", Assert.IsType<CommandFailed>(reply).Reason);
        Assert.All(cluster.Live, n => Assert.Empty(n.Store.ListVolumes()));
    }

    [Fact]
    public async Task A_host_that_fails_during_creation_leaves_no_volume_on_any_host()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        // Let placement know all three, then one host's agent dies while its member stays Up: it is still chosen,
        // but cannot vote.
        var first = await cluster.CreateVolumeAsync(3, 64 << 20, VolumeMode.Sync);
        var before = cluster.Live.ToDictionary(n => n.HostId, n => n.Store.ListVolumes().Count);
        cluster[2].System.ActorSelection("/user/" + CloudFs.Actors.Replication.HostAgent.Name).Tell(Akka.Actor.PoisonPill.Instance);

        var reply = await cluster[0].Management.Ask<IManagementMessage>(new CreateVolume(3, 64 << 20, VolumeMode.Sync), Timeout);
        var failed = Assert.IsType<CommandFailed>(reply);
        Assert.Contains("no volume was created", failed.Reason);
        // Nothing new anywhere: not on the primary that would have been chosen, not on the other replica.
        Assert.All(cluster.Live, n => Assert.Equal(before[n.HostId], n.Store.ListVolumes().Count));
        Assert.All(cluster.Live, n => Assert.NotNull(n.Store.GetVolume(Id160.Parse(first.VolumeId))));
    }

    [Fact]
    public async Task When_the_primary_dies_a_replica_takes_over_with_every_acknowledged_write_and_the_old_primary_catches_up()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await AReplicaTakesOverAndTheOldPrimaryCatchesUp(cluster);
    }

    /// <summary>The scenario of the test above on any 3-node cluster (TlsClusterTests runs it with TLS).</summary>
    internal static async Task AReplicaTakesOverAndTheOldPrimaryCatchesUp(TestCluster cluster)
    {
        var created = await cluster.CreateVolumeAsync(3, 64 << 20, VolumeMode.Sync);
        var volume = Id160.Parse(created.VolumeId);
        var primaryIndex = cluster.IndexOf(created.Hosts[0].HostId);
        var data = Pattern(1 << 20, 11);
        await cluster[primaryIndex].Gateway.WriteAsync(volume, 0, data, fua: true);
        var acknowledgedLsn = cluster[primaryIndex].Store.GetVolume(volume)!.Lsn;

        await cluster.CrashAsync(primaryIndex);
        var survivor = cluster.Live.First();
        // Writable through a survivor once the failover is done (the write is retried while the volume moves).
        var more = Pattern(1 << 20, 12);
        await Eventually.Value(async () => { await survivor.Gateway.WriteAsync(volume, 1 << 20, more, fua: true); return "written"; },
            TimeSpan.FromSeconds(40), "a write through a survivor after the failover");

        var survivors = cluster.Live.Select(n => new CloudFsNodeRef(n)).ToArray();
        var newPrimary = survivors.Single(n => n.Node.Store.IsWritable(volume)).Node;
        Assert.True(newPrimary.Store.GetVolume(volume)!.ViewNumber >= 1);
        await HeadsAgree(cluster, volume, survivors, acknowledgedLsn + 2);
        await AssertBytes(volume, survivors, 0, data);
        await AssertBytes(volume, survivors, 1 << 20, more);

        // The old primary comes back: it follows the new primary and ends with the same head, no longer writable.
        await cluster.RestartAsync(primaryIndex);
        var everyone = cluster.Live.Select(n => new CloudFsNodeRef(n)).ToArray();
        await HeadsAgree(cluster, volume, everyone, acknowledgedLsn + 2);
        Assert.False(cluster[primaryIndex].Store.IsWritable(volume));
        await AssertBytes(volume, everyone, 0, data);
        await AssertBytes(volume, everyone, 1 << 20, more);
    }

    [Fact]
    public async Task An_old_primary_written_through_as_soon_as_it_returns_steps_down_without_waiting_for_a_sweep()
    {
        // No sweep: what makes the old primary step down is placement's answer to its first report, not the sweep that
        // re-sends every follow command (2 minutes by default, in which an async volume's clients on that host would
        // write a chain that diverges from the new primary's).
        await using var cluster = await TestCluster.StartAsync(3, "cloudfs.placement.sweep = 10m\n", null, "127.0.59.1");
        var created = await cluster.CreateVolumeAsync(3, 64 << 20, VolumeMode.Async);
        var volume = Id160.Parse(created.VolumeId);
        var primaryIndex = cluster.IndexOf(created.Hosts[0].HostId);
        await cluster[primaryIndex].Gateway.WriteAsync(volume, 0, Pattern(64 << 10, 21), fua: true);

        await cluster.CrashAsync(primaryIndex);
        var survivor = cluster.Live.First();
        var failedOver = Pattern(64 << 10, 22);
        await Eventually.Value(async () => { await survivor.Gateway.WriteAsync(volume, 1 << 20, failedOver, fua: true); return "written"; },
            TimeSpan.FromSeconds(40), "a write through a survivor after the failover");

        // Back, and written through at once: its log still holds the old view's secret, so its volume actor starts as the
        // writer and claims the chain before placement has heard from the host.
        await cluster.RestartAsync(primaryIndex);
        var returned = cluster[primaryIndex];
        var through = Pattern(64 << 10, 23);
        await Eventually.Value(async () => { await returned.Gateway.WriteAsync(volume, 2 << 20, through, fua: true); return "written"; },
            TimeSpan.FromSeconds(40), "a write through the old primary after it returned");

        // It steps down and follows: one chain on all three, with the write taken through the new primary.
        await cluster.Until(() => !returned.Store.IsWritable(volume), Timeout, "the old primary stepped down");
        var everyone = cluster.Live.Select(n => new CloudFsNodeRef(n)).ToArray();
        await Eventually.Value(async () =>
        {
            await returned.Gateway.WriteAsync(volume, 3 << 20, through, fua: true);
            return "written";
        }, Timeout, "a write through the old primary once it follows");
        var head = cluster.Live.Single(n => n.Store.IsWritable(volume)).Store.GetVolume(volume)!.Lsn;
        await HeadsAgree(cluster, volume, everyone, head);
        await AssertBytes(volume, everyone, 1 << 20, failedOver);
        await AssertBytes(volume, everyone, 2 << 20, through);
        await AssertBytes(volume, everyone, 3 << 20, through);
    }

    [Fact]
    public async Task A_replica_host_away_past_replace_after_is_replaced_and_the_new_host_streams_the_volume_whole()
    {
        await using var cluster = await TestCluster.StartAsync(4);
        var created = await cluster.CreateVolumeAsync(3, 64 << 20, VolumeMode.Async);
        var volume = Id160.Parse(created.VolumeId);
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var data = Pattern(2 << 20, 21);
        await primary.Gateway.WriteAsync(volume, 0, data, fua: true);
        var outsider = cluster.Live.Single(n => created.Hosts.All(h => h.HostId != n.HostId.ToString()));
        Assert.Null(outsider.Store.GetVolume(volume));

        var lost = cluster.IndexOf(created.Hosts[2].HostId);
        var lostHost = created.Hosts[2].HostId;
        await cluster.CrashAsync(lost);
        // After replace-after (3 s here) the outsider joins the replica set and receives everything.
        var holders = new[] { primary, outsider }.Select(n => new CloudFsNodeRef(n)).ToArray();
        await HeadsAgree(cluster, volume, holders, 3);
        await AssertBytes(volume, holders, 0, data);
        var replicas = primary.Store.GetVolume(volume)!.Replicas.Select(r => r.ToString()).ToArray();
        Assert.Contains(outsider.HostId.ToString(), replicas);
        Assert.DoesNotContain(lostHost, replicas);
        Assert.Equal(primary.HostId.ToString(), replicas[0]);
        // And it keeps following: a later write reaches it too.
        await primary.Gateway.WriteAsync(volume, 4 << 20, Pattern(4096, 22), fua: true);
        await HeadsAgree(cluster, volume, holders, primary.Store.GetVolume(volume)!.Lsn);
    }
}

/// <summary>A node as a test sees it (records compare by reference here).</summary>
public sealed record CloudFsNodeRef(CloudFs.Actors.Node.CloudFsNode Node);
