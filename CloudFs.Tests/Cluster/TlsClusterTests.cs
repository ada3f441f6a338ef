// The in-process cluster scenarios with every node on --tls (remoting over mutual TLS, certificates of one test
// authority): creation with three replicas, writes through any node, failover when the primary dies and its return.
using CloudFs.Actors.Security;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class TlsClusterTests
{
    private static async Task<TestCluster> StartAsync()
    {
        var cluster = await TestCluster.StartTlsAsync(3);
        // The scenarios below must really run over TLS: every member's address is a TLS one.
        Assert.All(cluster.Live, n => Assert.Equal(RemotingTls.TlsScheme, Akka.Cluster.Cluster.Get(n.System).SelfAddress.Protocol));
        Assert.All(cluster.Live, n => Assert.Equal(3, Akka.Cluster.Cluster.Get(n.System).State.Members.Count(m => m.Address.Protocol == RemotingTls.TlsScheme)));
        return cluster;
    }

    [Fact]
    public async Task With_tls_newdisk_3_places_one_replica_per_host_and_every_replica_follows_the_primary()
    {
        await using var cluster = await StartAsync();
        await ReplicationTests.EveryReplicaFollowsThePrimary(cluster);
    }

    [Fact]
    public async Task With_tls_when_the_primary_dies_a_replica_takes_over_and_the_old_primary_catches_up()
    {
        await using var cluster = await StartAsync();
        await ReplicationTests.AReplicaTakesOverAndTheOldPrimaryCatchesUp(cluster);
    }
}
