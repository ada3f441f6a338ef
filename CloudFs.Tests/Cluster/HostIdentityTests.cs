// A host speaks only as itself: members prove their host id to each other (with TLS, with a node certificate of the
// cluster authority), a member whose certificate names another host is downed and never chosen, a share is sealed
// only to the key a replica-set host proved, whoever asks for it, and only placement's member can make a replica fence
// itself or re-seal its share. In-process nodes on 127.0.6.x; with TLS on at the
// application level (remoting itself still plain), the proofs alone must hold.
using Akka.Actor;
using Akka.Configuration;
using CloudFs.Actors.Identity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class HostIdentityTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Node i listens on 127.0.6.(first + i) with host id ids[i] and a certificate naming certified(i).</summary>
    private static Task<TestCluster> StartAsync(int count, int first, Id160[] ids, TestAuthority? ca, Func<int, Id160>? certified = null) =>
        TestCluster.StartAsync(count, "", (i, o) => o with
        {
            Listen = $"127.0.6.{first + i}",
            HostId = ids[i],
            TlsDirectory = ca?.Node($"node{i}", (certified ?? (j => ids[j]))(i), $"127.0.6.{first + i}"),
            // An honest node refuses to start with another host's certificate; an impostor runs a build that does not.
            Impostor = certified is not null && certified(i) != ids[i],
        });

    private static Task<VolumeCreated> CreateAsync(TestCluster cluster, int replicas) =>
        cluster.CreateVolumeAsync(replicas, 64 << 20, VolumeMode.Sync);

    private static string AddressOf(CloudFsNode node) => Akka.Cluster.Cluster.Get(node.System).SelfAddress.ToString();

    private static Task<object> AskAgent(CloudFsNode from, CloudFsNode to, object message) =>
        from.System.ActorSelection(AddressOf(to) + HostAgent.Path).Ask<object>(message, Timeout);

    private static Task EveryoneProvesEveryone(TestCluster cluster, bool certified) =>
        Eventually.Until(() => cluster.Live.All(n => cluster.Live.All(m =>
                n.ProvenHosts.OfHost(m.HostId) is { } p && p.Address == AddressOf(m) && (p.Certificate?.HostId == m.HostId) == certified)),
            Timeout, "every node has verified every member as its host");

    [Fact]
    public async Task Members_prove_their_certified_host_ids_and_a_volume_fails_over_with_shares_sealed_to_the_proven_keys()
    {
        using var ca = new TestAuthority();
        var ids = Enumerable.Range(0, 3).Select(_ => Id160.Random()).ToArray();
        await using var cluster = await StartAsync(3, 1, ids, ca);
        await EveryoneProvesEveryone(cluster, certified: true);

        var created = await CreateAsync(cluster, 3);
        var volume = Id160.Parse(created.VolumeId);
        var primaryIndex = cluster.IndexOf(created.Hosts[0].HostId);
        var data = new byte[1 << 16];
        Random.Shared.NextBytes(data);
        await cluster[primaryIndex].Gateway.WriteAsync(volume, 0, data, fua: true);

        // The failover's shares are re-sealed by the survivors for the chosen host, to the key it proved to them.
        await cluster.CrashAsync(primaryIndex);
        var survivor = cluster.Live.First();
        await Eventually.Value(async () => { await survivor.Gateway.WriteAsync(volume, 1 << 16, data, fua: true); return "written"; },
            TimeSpan.FromSeconds(40), "a write through a survivor after the failover");
        var back = new byte[data.Length];
        await survivor.Gateway.ReadAsync(volume, 0, back);
        Assert.Equal(data, back);
        Assert.Single(cluster.Live, n => n.Store.IsWritable(volume));
    }

    [Fact]
    public async Task A_member_whose_certificate_names_another_host_is_downed_and_never_chosen_as_a_replica()
    {
        using var ca = new TestAuthority();
        var ids = Enumerable.Range(0, 4).Select(_ => Id160.Random()).ToArray();
        // Node 3 runs as host ids[3] (its role) but holds host ids[1]'s valid certificate.
        await using var cluster = await StartAsync(3, 11, ids, ca, certified: i => i == 3 ? ids[1] : ids[i]);
        await EveryoneProvesEveryone(cluster, certified: true);
        var honest = cluster.Nodes.Take(3).Select(n => n!).ToArray();
        var listen = "@127.0.6.14:";

        // The first honest node to meet it Up asks for its proof, which its agent answers at once (it exists before the
        // node joins), refuses it and downs it: usually before the impostor hears that it is Up, and then its start
        // fails at once, saying so. (If it did hear it first, it started, and it is downed like any refused member.)
        try { cluster.Nodes.Add(await cluster.StartNodeAsync(3)); }
        catch (ClusterJoinRefusedException e) { Assert.Contains("the cluster removed this member", e.Message); }

        // The refusal is remembered, and counted, on the honest nodes that refused it, after the impostor is gone.
        var refusal = await Eventually.Value(() => Task.FromResult(honest.SelectMany(n => n.IdentityRefusals.Recent).FirstOrDefault(r => r.Address.Contains(listen))),
            Timeout, "an honest node refused the member with another host's certificate");
        Assert.Contains($"host:{ids[3]}", refusal.Reason);
        Assert.Contains($"its certificate names host {ids[1]}", refusal.Reason);
        Assert.Contains(refusal.Address, refusal.Reason);
        Assert.True(honest.Sum(n => n.IdentityRefusals.Total) >= 1);
        // Never a host on any honest node, neither as the host it runs as nor as the one its certificate names.
        Assert.All(honest, n => Assert.Null(n.ProvenHosts.OfHost(ids[3])));
        Assert.All(honest, n => Assert.DoesNotContain(listen, n.ProvenHosts.OfHost(ids[1])!.Address));
        Assert.All(honest, n => Assert.DoesNotContain(n.ProvenHosts.All(), p => p.Address.Contains(listen)));
        // Downed: not an Up member in any honest node's view of the cluster.
        await Eventually.Until(() => honest.All(n =>
                !Akka.Cluster.Cluster.Get(n.System).State.Members.Any(m => m.Address.ToString().Contains(listen) && m.Status == Akka.Cluster.MemberStatus.Up)),
            Timeout, "the impostor is no longer an Up member anywhere");

        var created = await CreateAsync(cluster, 3);
        Assert.Equal(ids.Take(3).Select(i => i.ToString()).Order(), created.Hosts.Select(h => h.HostId).Order());
        var four = await cluster[0].Management.Ask<IManagementMessage>(new CreateVolume(4, 64 << 20, VolumeMode.Sync), Timeout);
        Assert.Equal("only 3 host(s) found", Assert.IsType<CommandFailed>(four).Reason);
    }

    /// <summary>The member the placement singleton runs on: the oldest Up member.</summary>
    private static CloudFsNode PlacementNode(TestCluster cluster)
    {
        var oldest = Akka.Cluster.Cluster.Get(cluster.Live.First().System).State.Members
            .Where(m => m.Status == Akka.Cluster.MemberStatus.Up).OrderBy(m => m, Akka.Cluster.Member.AgeOrdering).First().Address.ToString();
        return cluster.Live.Single(n => AddressOf(n) == oldest);
    }

    [Fact]
    public async Task A_share_is_sealed_only_to_a_replica_hosts_proven_key_and_released_only_at_placements_word()
    {
        using var ca = new TestAuthority();
        var ids = Enumerable.Range(0, 3).Select(_ => Id160.Random()).ToArray();
        await using var cluster = await StartAsync(3, 21, ids, ca);
        await EveryoneProvesEveryone(cluster, certified: true);
        var created = await CreateAsync(cluster, 2);
        var volume = created.VolumeId;
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var replica = cluster.NodeOf(created.Hosts[1].HostId);
        var asker = cluster.Live.Single(n => n != primary && n != replica);
        var placement = PlacementNode(cluster);
        var member = cluster.Live.First(n => n != placement && n != replica);

        // A member outside the replica set asks the primary for the replica's share: sealed for the replica's key.
        var share = Assert.IsType<ShareDto>(await AskAgent(asker, primary, new RequestShare(volume, replica.HostId.ToString())));
        Assert.Equal(replica.HostId.ToString(), share.Host);
        var stolen = Assert.Throws<CloudFsException>(() => asker.Store.Ownership.StoreShare(share.ToShare() with { Host = asker.HostId }));
        Assert.Contains("refused", stolen.Message);
        replica.Store.Ownership.StoreShare(share.ToShare());

        // A proven member that does not run placement cannot make the replica fence itself or re-seal its share.
        foreach (var command in new object[] { new ReleaseShare(volume, primary.HostId.ToString()), new FenceVolume(volume) })
            Assert.Contains("which is not the member placement runs on", Assert.IsType<ControlFailed>(await AskAgent(member, replica, command)).Reason);
        // ... and changed nothing: the replica still acknowledges, so a durable write on the 2-host sync volume completes.
        var data = new byte[4096];
        await primary.Gateway.WriteAsync(Id160.Parse(volume), 0, data, fua: true).AsTask().WaitAsync(Timeout);

        // Placement's own release is sealed for the primary's key: no other host can open it.
        var released = Assert.IsType<ShareDto>(await AskAgent(placement, replica, new ReleaseShare(volume, primary.HostId.ToString())));
        var other = cluster.Live.First(n => n != primary);
        Assert.Throws<CloudFsException>(() => other.Store.Ownership.StoreShare(released.ToShare() with { Host = other.HostId }));

        // A recipient outside the replica set is refused by both.
        var notReplica = asker.HostId.ToString();
        Assert.Contains("is not in the replica set", Assert.IsType<ControlFailed>(await AskAgent(asker, primary, new RequestShare(volume, notReplica))).Reason);
        Assert.Contains("is not in the replica set", Assert.IsType<ControlFailed>(await AskAgent(placement, replica, new ReleaseShare(volume, notReplica))).Reason);
    }

    [Fact]
    public async Task A_share_asked_for_by_a_process_outside_the_cluster_or_for_a_host_not_proven_is_refused()
    {
        var ids = Enumerable.Range(0, 3).Select(_ => Id160.Random()).ToArray();
        await using var cluster = await StartAsync(3, 31, ids, ca: null);
        await EveryoneProvesEveryone(cluster, certified: false);
        var created = await CreateAsync(cluster, 3);
        var volume = created.VolumeId;
        var primary = cluster.NodeOf(created.Hosts[0].HostId);
        var replica = created.Hosts[1].HostId;

        // A plain actor system that never joined, naming a real replica host (the attack of issue 12, item 1).
        var outsiderConfig = ConfigurationFactory.ParseString("akka.actor.provider = remote\nakka.remote.dot-netty.tcp.hostname = \"127.0.6.40\"\nakka.remote.dot-netty.tcp.port = 0")
            .WithFallback(CloudFsConfig.Default());
        using (var outsider = ActorSystem.Create(CloudFsNode.SystemName, outsiderConfig))
        {
            var reply = await outsider.ActorSelection(AddressOf(primary) + HostAgent.Path).Ask<object>(new RequestShare(volume, replica), Timeout);
            Assert.Contains("not a member that proved its identity", Assert.IsType<ControlFailed>(reply).Reason);
            await outsider.Terminate();
        }

        // A replica host whose member is gone is no longer proven: no share is sealed for it.
        var gone = cluster.IndexOf(created.Hosts[2].HostId);
        var goneId = cluster[gone].HostId;
        await cluster.CrashAsync(gone);
        await Eventually.Until(() => primary.ProvenHosts.OfHost(goneId) is null, Timeout, "the primary forgot the crashed host");
        var asker = cluster.NodeOf(replica);
        var refused = Assert.IsType<ControlFailed>(await AskAgent(asker, primary, new RequestShare(volume, goneId.ToString())));
        Assert.Contains("has not proved its identity", refused.Reason);
    }
}
