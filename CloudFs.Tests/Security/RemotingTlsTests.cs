// Akka remoting of a node with --tls: only holders of the cluster authority's certificates associate. A foreign
// ActorSystem over plain TCP, or with TLS and a certificate of another authority, gets no answer and cannot join;
// one with an operator's certificate of the cluster can (the CLI's ClusterClient). The CLI's ManagementClient says
// when it needs --tls, and believes only nodes of its own authority.
using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;
using CloudFs.Actors.Management;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;
using CloudFs.Tests.Cluster;
using Xunit.Abstractions;

namespace CloudFs.Tests.Security;

/// <summary>One node with --tls for the tests that only ask it things (the ones that read its log start their own).</summary>
public sealed class OneTlsNode : IAsyncLifetime
{
    internal TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartTlsAsync(1);

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}

[Collection(nameof(ClusterCollection))]
public sealed class RemotingTlsTests(ITestOutputHelper output, OneTlsNode shared) : IClassFixture<OneTlsNode>
{
    // Long enough for an association and an answer on a loaded machine; what must not answer is given as long.
    private static readonly TimeSpan Answer = TimeSpan.FromSeconds(10);
    // How long a refused peer is watched, after the refusal is logged, for a join or an answer that must not come.
    private static readonly TimeSpan RefusedWindow = TimeSpan.FromSeconds(3);

    private static int Port(TestCluster cluster) => cluster[0].Options.AkkaPort;

    /// <summary>An ActorSystem named like the cluster's, that would join it if let in; TLS with <paramref name="ssl"/>.</summary>
    private static ActorSystem Foreign(DotNettySslSetup? ssl)
    {
        var config = ConfigurationFactory.ParseString($"""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = "127.0.0.1"
            akka.remote.dot-netty.tcp.port = 0
            akka.remote.dot-netty.tcp.enable-ssl = {(ssl is null ? "off" : "on")}
            akka.loglevel = WARNING
            akka.stdout-loglevel = OFF
            akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
            """);
        var bootstrap = BootstrapSetup.Create().WithConfig(config);
        return ActorSystem.Create("cloudfs", ssl is null ? ActorSystemSetup.Create(bootstrap) : bootstrap.And(ssl));
    }

    /// <summary>What an attacker with a certificate would run: its certificate, and any server accepted.</summary>
    private static DotNettySslSetup AnyServer(ClusterTls own) =>
        new(own.Identity.IsNode ? own.Certificate : own.ClientCertificate, suppressValidation: true, requireMutualAuthentication: true,
            validateCertificateHostname: false, (_, _, _, _, _) => true);

    private static async Task<IActorRef?> IdentifyHostAgent(ActorSystem from, string scheme, int port, TimeSpan? within = null)
    {
        try
        {
            var identity = await from.ActorSelection($"{scheme}://cloudfs@127.0.0.1:{port}/user/{HostAgent.Name}")
                .Ask<ActorIdentity>(new Identify(1), within ?? Answer);
            return identity.Subject;
        }
        catch (AskTimeoutException)
        {
            return null;
        }
    }

    /// <summary>The node's warnings (remoting logs refused peers there).</summary>
    private static ConcurrentQueue<string> Warnings(ActorSystem system)
    {
        var seen = new ConcurrentQueue<string>();
        var listener = system.ActorOf(Props.Create(() => new LogCollector(seen)));
        system.EventStream.Subscribe(listener, typeof(Warning));
        system.EventStream.Subscribe(listener, typeof(Error));
        return seen;
    }

    private sealed class LogCollector : ReceiveActor
    {
        public LogCollector(ConcurrentQueue<string> seen) =>
            Receive<LogEvent>(e => seen.Enqueue($"{e.LogLevel()} {e.LogSource}: {e.Message}{(e is Error { Cause: { } c } ? " | cause: " + c.GetType().Name + ": " + c.Message : "")}"));
    }

    /// <summary>The foreign system asks to join and identifies the node's host agent; the node refuses it (it logs a
    /// warning that <paramref name="refused"/> matches, awaited), and for a window after that refusal neither the join
    /// nor the identification succeeds: a join over plain remoting takes a second or two on loopback.</summary>
    private static async Task CannotAssociateOrJoin(TestCluster cluster, ActorSystem foreign, string scheme,
        ConcurrentQueue<string> warnings, Func<string, bool> refused)
    {
        var target = $"{scheme}://cloudfs@127.0.0.1:{Port(cluster)}";
        Akka.Cluster.Cluster.Get(foreign).Join(Address.Parse(target));
        var identified = IdentifyHostAgent(foreign, scheme, Port(cluster), RefusedWindow);
        var node = Akka.Cluster.Cluster.Get(cluster[0].System);
        await Eventually.Until(() => warnings.Any(refused), Answer, "the node logs the refused connection");
        var window = DateTime.UtcNow + RefusedWindow;
        while (DateTime.UtcNow < window)
        {
            Assert.Equal([node.SelfAddress], node.State.Members.Select(m => m.Address));
            await Task.Delay(100);
        }
        Assert.Null(await identified);
        Assert.NotEqual(Akka.Cluster.MemberStatus.Up, Akka.Cluster.Cluster.Get(foreign).SelfMember.Status);
    }

    [Fact]
    public async Task A_plain_actor_system_gets_no_answer_from_a_tls_node_and_cannot_join()
    {
        await using var cluster = await TestCluster.StartTlsAsync(1);
        var warnings = Warnings(cluster[0].System);
        using var foreign = Foreign(null);
        await CannotAssociateOrJoin(cluster, foreign, RemotingTls.PlainScheme, warnings,
            w => w.Contains("Rejected incoming connection from [[::ffff:127.0.0.1]", StringComparison.Ordinal));
        foreach (var w in warnings) output.WriteLine(w);
        Assert.Contains(warnings, w => w.Contains("Rejected incoming connection from [[::ffff:127.0.0.1]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_actor_system_with_a_certificate_of_another_authority_gets_no_answer_and_cannot_join_and_is_logged_with_its_reason()
    {
        await using var cluster = await TestCluster.StartTlsAsync(1);
        var warnings = Warnings(cluster[0].System);
        using var other = new TestAuthority();
        using var stranger = other.LoadNode("stranger");
        using var foreign = Foreign(AnyServer(stranger));
        await CannotAssociateOrJoin(cluster, foreign, RemotingTls.TlsScheme, warnings,
            w => w.Contains("remoting: refused the peer at 127.0.0.1", StringComparison.Ordinal));
        foreach (var w in warnings) output.WriteLine(w);
        var refusal = Assert.Single(warnings, w => w.Contains("remoting: refused the peer at 127.0.0.1", StringComparison.Ordinal));
        Assert.Contains("is not one of this cluster's", refusal);
    }

    [Fact]
    public async Task An_actor_system_with_an_operator_certificate_of_the_cluster_is_answered()
    {
        var cluster = shared.Cluster;
        // Each test of the shared node's authority issues its operator directory under a name of its own.
        using var operatorTls = ClusterTls.Load(cluster.Authority!.Operator("admin-identify"));
        using var foreign = Foreign(RemotingTls.SslSetup(operatorTls, RemotingPeers.NodesOnly));
        Assert.NotNull(await IdentifyHostAgent(foreign, RemotingTls.TlsScheme, Port(cluster)));
    }

    [Fact]
    public async Task The_management_client_with_an_operator_certificate_manages_a_tls_cluster()
    {
        var cluster = shared.Cluster;
        using var operatorTls = ClusterTls.Load(cluster.Authority!.Operator("admin-manage"));
        await using var client = await ManagementClient.ConnectAsync([$"127.0.0.1:{Port(cluster)}"], operatorTls);
        var created = Assert.IsType<VolumeCreated>(await client.AskAsync(new CreateVolume(1, 1 << 20, VolumeMode.Sync), Answer));
        var list = Assert.IsType<VolumeList>(await client.AskAsync(new ListVolumes(), Answer));
        Assert.Contains(list.Volumes, v => v.Id == created.VolumeId);
    }

    [Fact]
    public async Task The_management_client_without_a_certificate_is_told_the_cluster_needs_tls_and_changes_nothing()
    {
        var cluster = shared.Cluster;
        var before = cluster[0].Store.ListVolumes().Count;
        await using var client = await ManagementClient.ConnectAsync([$"127.0.0.1:{Port(cluster)}"]);
        var e = await Assert.ThrowsAsync<CertificateException>(() => client.AskAsync(new CreateVolume(1, 1 << 20, VolumeMode.Sync), TimeSpan.FromSeconds(20)));
        output.WriteLine(e.Message);
        Assert.Contains("--tls", e.Message);
        Assert.Equal(before, cluster[0].Store.ListVolumes().Count);
    }

    [Fact]
    public async Task The_management_client_refuses_a_node_of_another_authority()
    {
        var cluster = shared.Cluster;
        var before = cluster[0].Store.ListVolumes().Count;
        using var other = new TestAuthority();
        using var stranger = ClusterTls.Load(other.Operator("admin"));
        await using var client = await ManagementClient.ConnectAsync([$"127.0.0.1:{Port(cluster)}"], stranger);
        var e = await Assert.ThrowsAsync<CertificateException>(() => client.AskAsync(new CreateVolume(1, 1 << 20, VolumeMode.Sync), TimeSpan.FromSeconds(20)));
        output.WriteLine(e.Message);
        Assert.Contains("not one of this cluster's", e.Message);
        Assert.Equal(before, cluster[0].Store.ListVolumes().Count);
    }

    [Fact]
    public async Task The_management_client_with_a_certificate_is_told_when_the_cluster_runs_without_tls()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        using var authority = new TestAuthority();
        using var operatorTls = ClusterTls.Load(authority.Operator("admin"));
        await using var client = await ManagementClient.ConnectAsync([$"127.0.0.1:{Port(cluster)}"], operatorTls);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => client.AskAsync(new ListVolumes(), TimeSpan.FromSeconds(5)));
        output.WriteLine(e.Message);
        Assert.Contains("--tls", e.Message);
    }

    [Fact]
    public async Task A_peer_refused_again_and_again_is_logged_once_per_reason_while_every_refusal_counts()
    {
        using var authority = new TestAuthority();
        using var node = authority.LoadNode("node");
        using var other = new TestAuthority();
        using var stranger = other.LoadNode("stranger");
        using var system = ActorSystem.Create("refusals", "akka.loglevel = WARNING\nakka.stdout-loglevel = OFF");
        var warnings = Warnings(system);
        var refused = 0;
        var validator = RemotingTls.SslSetup(node, RemotingPeers.NodesAndOperators, _ => Interlocked.Increment(ref refused)).CustomValidator!;
        var log = Logging.GetLogger(system, "remoting");
        foreach (var port in new[] { 40001, 40002, 40003 })
            Assert.False(validator(stranger.Certificate, null, $"[::ffff:10.1.2.3]:{port}", System.Net.Security.SslPolicyErrors.None, log));
        Assert.False(validator(null, null, "10.1.2.3:40004", System.Net.Security.SslPolicyErrors.None, log));
        Assert.True(validator(authority.LoadNode("peer").Certificate, null, "10.1.2.4:40005", System.Net.Security.SslPolicyErrors.None, log));
        Assert.Equal(4, refused);
        await Eventually.Until(() => warnings.Count >= 2, Answer, "two warnings logged");
        Assert.Equal(2, warnings.Count(w => w.Contains("remoting: refused the peer at 10.1.2.3:", StringComparison.Ordinal)));
    }

    [Fact]
    public void The_log_filter_drops_handshake_stack_traces_and_prints_each_rejected_address_once()
    {
        var filter = new RemotingTlsLogFilter();
        LogFilterDecision Decide(LogEvent e) => filter.ShouldKeepMessage(e, e.ToString());
        var error = new Error(new System.Security.Authentication.AuthenticationException("rejected"), "TcpServerHandler (akka://cloudfs)", typeof(object),
            "TLS handshake failed on channel [[::ffff:127.0.0.1]:4053->[::ffff:10.0.0.9]:41420](Id=1)\nTLS handshake failed (Server side)");
        Assert.Equal(LogFilterDecision.Drop, Decide(error));
        Assert.Equal(LogFilterDecision.Drop, Decide(new Error(new DotNetty.Handlers.Tls.NotSslRecordException("not an SSL/TLS record: 2e00"),
            "TcpServerHandler (akka://cloudfs)", typeof(object), "Error caught channel [[::ffff:127.0.0.1]:4053->[::ffff:10.0.0.9]:41420](Id=1)")));
        Warning Rejected(int port) => new("TcpServerHandler (akka://cloudfs)", typeof(object),
            $"Rejected incoming connection from [[::ffff:10.0.0.9]:{port}] due to TLS handshake failure. This is likely invalid or malicious traffic.");
        Assert.Equal(LogFilterDecision.Keep, Decide(Rejected(41420)));
        Assert.Equal(LogFilterDecision.Drop, Decide(Rejected(41421)));
        Assert.Equal(LogFilterDecision.Keep, Decide(new Warning("TcpServerHandler (akka://cloudfs)", typeof(object),
            "Rejected incoming connection from [[::ffff:10.0.0.10]:41420] due to TLS handshake failure. This is likely invalid or malicious traffic.")));
        // The outbound side's failure stops the actor system: its explanation stays.
        Assert.Equal(LogFilterDecision.NoDecision, Decide(new Error(null, "TcpClientHandler (akka://cloudfs)", typeof(object), "TLS handshake failed on channel [a->b]")));
        Assert.Equal(LogFilterDecision.NoDecision, Decide(new Warning("TcpTransport (akka://cloudfs)", typeof(object), "remoting: refused the peer at 10.0.0.9: why")));
    }
}
