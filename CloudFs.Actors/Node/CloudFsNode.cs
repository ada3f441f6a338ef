// One running node: the ActorSystem (cluster member), the pinned log store, sharded volumes and the
// management actor. The host's front ends (NBD, HTTP, CLI) talk to it through Gateway and Management.
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.Singleton;
using CloudFs.Actors.Replication;
using Akka.Event;
using CloudFs.Actors.Devices;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Identity;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Persistence;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

public sealed partial class CloudFsNode : IAsyncDisposable
{
    public const string SystemName = "cloudfs";
    public const string VolumeTypeName = "volume";

    private int _disposed;

    /// <summary>How long a join may take before the node says it is still waiting for a seed to let it in.</summary>
    private static readonly TimeSpan JoinNoticeAfter = TimeSpan.FromSeconds(3);
    /// <summary>How often a node that is not its first seed asks its seeds to let it in until one does.</summary>
    private static readonly TimeSpan JoinAskEvery = TimeSpan.FromSeconds(1);

    private CloudFsNode(NodeOptions asked, NodeIncarnation first, ReplicationCounters replication, VolumeAttachments attachments,
        IdentityRefusals refusals)
    {
        _asked = asked;
        _current = first;
        Replication = replication;
        IdentityRefusals = refusals;
        Attachments = attachments;
        Gateway = new IncarnationGateway(() => _current, first.Settings.Volumes.AskTimeout);
        _membership = KeepMembershipAsync(first);
    }

    /// <summary>Opens the device, starts the ActorSystem "cloudfs" and the node's actors (sharding, management), then
    /// joins the seeds (or itself). A node the cluster removes later starts a new incarnation and rejoins (CloudFsNode.Rejoin.cs).</summary>
    public static async Task<CloudFsNode> StartAsync(NodeOptions options, CancellationToken ct = default)
    {
        ThreadPoolFloor.Raise();
        var replication = new ReplicationCounters();
        var attachments = new VolumeAttachments();
        var refusals = new IdentityRefusals();
        var first = await StartIncarnationAsync(options, replication, attachments, refusals, rejoining: false, ct).ConfigureAwait(false);
        return new CloudFsNode(options, first, replication, attachments, refusals);
    }

    /// <summary>One incarnation: the device opened, the node's actors started, the ActorSystem Up in the cluster.</summary>
    private static async Task<NodeIncarnation> StartIncarnationAsync(NodeOptions options, ReplicationCounters replication, VolumeAttachments attachments,
        IdentityRefusals refusals, bool rejoining, CancellationToken ct)
    {
        // Every setting is read here, once; a missing or wrong one ends the start before anything is opened.
        var (config, settings) = CloudFsConfig.Load(options);
        (config, settings) = CloudFsConfig.WithHostRole(config, settings);
        if (rejoining) config = RejoinConfig(config);
        // The node joins its seeds itself, once every actor the other members address exists (below): Akka would join
        // them as the system starts, and members would meet this one Up before its host agent, its sharding region or
        // the sharding's replicator were there (dead letters, and a coordinator's read of the sharding state that waits
        // for this member's replicator and times out).
        var seeds = config.GetStringList("akka.cluster.seed-nodes", []).Select(Address.Parse).ToList();
        config = ConfigurationFactory.ParseString("akka.cluster.seed-nodes = []").WithFallback(config);
        // Only the first seed forms a cluster by itself (when no other seed welcomes it within seed-node-timeout, 5 s);
        // every other node only asks its seeds, again each seed-node-timeout. Nodes started together ask before their
        // first seed is a member: asking again each second, they join a second after it is, not up to 5 s later.
        if (seeds.Count > 0 && !IsOwnAddress(config, seeds[0]))
            config = ConfigurationFactory.ParseString($"akka.cluster.seed-node-timeout = {(int)JoinAskEvery.TotalMilliseconds}ms").WithFallback(config);
        // The node's certificate (--tls): the cluster's own channels (remoting, feeds) authenticate with it. Remoting
        // admits nodes and operators (the CLI's ClusterClient) of the cluster authority, nobody else.
        var tls = options.TlsDirectory is { Length: > 0 } directory ? ClusterTls.Load(directory) : null;
        // The device before the actor system: one that cannot be opened (held elsewhere, too small, another host's) is
        // refused before remoting binds its port, and leaves nothing behind. Its lines wait for the node's logger.
        var engineLines = new EngineLogLines();
        var storeOptions = CloudFsConfig.ToStoreOptions(settings, engineLines.Info, engineLines.Error);
        if (options.AdjustStore is { } adjust) storeOptions = adjust(storeOptions);
        LogStore opened;
        try { opened = LogStore.Open(storeOptions); }
        catch { tls?.Dispose(); throw; }
        ActorSystem system;
        try
        {
            // The cluster's channels prove this host's id with the certificate: it must be this host's.
            if (tls is not null && tls.HostId != opened.HostId && !options.Impostor)
                throw new CertificateException($"the certificate in {tls.Directory} is {tls.Identity}'s, but this node is host {opened.HostId}");
            system = RemotingTls.CreateSystem(SystemName, config, tls, RemotingPeers.NodesAndOperators);
        }
        catch { opened.Dispose(); tls?.Dispose(); throw; }
        if (tls is not null) system.RegisterOnTermination(tls.Dispose);
        try
        {
            // CloudFS's own logger (not system.Log, whose events NodeLogger counts as the framework's): the engine's lines.
            var log = Logging.GetLogger(system, typeof(CloudFsNode));
            engineLines.Attach(log);
            var compaction = settings.Compaction.Enabled ? settings.Compaction.Interval : (TimeSpan?)null;
            var checkpointTick = TimeSpan.FromTicks(Math.Clamp(storeOptions.CheckpointInterval.Ticks / 5, TimeSpan.TicksPerMillisecond * 100, TimeSpan.TicksPerSecond));
            // The device actor owns the open store from here: it checkpoints it and closes it when the system ends.
            system.ActorOf(BlockDeviceActor.Props(new BlockDeviceActor.Settings(storeOptions, checkpointTick, compaction, opened)), BlockDeviceActor.Name);
            var store = await CloudFsStorage.Get(system).StoreAsync.WaitAsync(ct).ConfigureAwait(false);

            var cluster = Cluster.Get(system);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            // A member can be downed while it joins (a member that refused its identity proof downs it at once, as soon
            // as it meets it Up, which can be before this member hears that it is Up): Akka then removes it and ends
            // its cluster, and the start ends with that, not after join-timeout.
            var removed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberRemoved(() => removed.TrySetResult());

            Address Self() => cluster.SelfAddress;
            bool Reachable(Address member) =>
                cluster.State.Members.Any(m => m.Address == member && m.Status == MemberStatus.Up) &&
                !cluster.State.Unreachable.Any(m => m.Address == member);
            // The members this node verified (identity proofs): placement and share sealing trust only these.
            var proven = new ProvenHosts(certified: tls is not null, refusals);
            // The placement singleton (on the oldest member) and this member's proxy to it.
            system.ActorOf(ClusterSingletonManager.Props(PlacementActor.Props(settings.Placement, proven, settings.Trash.Keep), PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(system)), PlacementActor.Name);
            var placement = system.ActorOf(ClusterSingletonProxy.Props("/user/" + PlacementActor.Name,
                ClusterSingletonProxySettings.Create(system)), PlacementActor.Name + "-proxy");

            var volumes = await ClusterSharding.Get(system).StartAsync(
                VolumeTypeName,
                entityId => VolumeEntity.Props(shard => VolumeActor.Props(Id160.Parse(entityId), settings.Volumes.AskTimeout, shard)),
                ClusterShardingSettings.Create(system),
                VolumeMessageExtractor.Instance,
                new VolumeAllocationStrategy(host => proven.OfHost(host) is { } h ? Address.Parse(h.Address) : null, Self, Reachable),
                PoisonPill.Instance).ConfigureAwait(false);

            var followers = FollowerSettings.From(settings.Replication) with { Counters = replication, Tls = tls };
            // The feed port listens where the cluster port does, over mutual TLS with --tls; it ends with the actor
            // system (a crash too).
            var feeds = FeedServer.Bind(settings.Node.Listen, settings.Replication.FeedPort, followers.AskTimeout, tls, log);
            system.RegisterOnTermination(feeds.Dispose);
            var agent = system.ActorOf(HostAgent.Props(store, placement, volumes, followers, feeds.Port, proven, tls, settings.Identity.Wait), HostAgent.Name);
            feeds.Serve(agent);
            FeedsEndBeforeHandOff.Register(system, feeds, agent);
            // This node is the host it runs as (`cloudfs node` checked its certificate names that host, NodeTrust), so
            // a create right after start counts it; every other member proves itself to the verifier.
            proven.Prove(cluster.SelfUniqueAddress, new ProvenHost(store.HostId, cluster.SelfAddress.ToString(), store.Ownership.HostPublicKey, tls?.Identity));
            system.ActorOf(IdentityVerifier.Props(proven, tls, store.HostId, settings.Identity), IdentityVerifier.Name);
            system.ActorOf(IntegrityAgent.Props(store, settings.Scrub, replication), IntegrityAgent.Name);
            system.ActorOf(TrashKeeper.Props(store, settings.Trash), TrashKeeper.Name);
            if (settings.CrashDetection.Enabled)
                system.ActorOf(CrashDetector.Props(settings.CrashDetection.ProbeTimeout), CrashDetector.Name);

            var management = system.ActorOf(
                ManagementActor.Props(store, store.HostId, settings.Management.AskTimeout, settings.Scrub.CommandTimeout, placement, volumes, attachments),
                ManagementActor.Name);
            ClusterClientReceptionist.Get(system).RegisterService(management);

            // No seeds configured: a one-node cluster that joins itself. A rejoining seed whose only seed was itself has
            // none left (RejoinConfig) and joins nobody: it waits, and is retried, until it may start a cluster alone.
            if (settings.Node.Seeds.Count == 0) cluster.Join(cluster.SelfAddress);
            else if (seeds.Count > 0) cluster.JoinSeedNodes(seeds);
            var joinTimeout = settings.Node.JoinTimeout;
            try
            {
                var joining = Stopwatch.StartNew();
                var joined = Task.WhenAny(up.Task, removed.Task);
                // What Akka's join says at debug only (RemotingLifecycleLines: a seed not listening yet, the join retried),
                // said once in CloudFS's words.
                if (seeds.Count > 0 && await Task.WhenAny(joined, Task.Delay(JoinNoticeAfter, ct)).ConfigureAwait(false) != joined)
                    log.Info("joining the cluster through {0}: no seed has let this node in yet; Akka keeps asking (every second; the first seed forms the cluster when no other seed answers it within 5 s)",
                        string.Join(", ", seeds));
                if (await joined.WaitAsync(joinTimeout > joining.Elapsed ? joinTimeout - joining.Elapsed : TimeSpan.Zero, ct).ConfigureAwait(false) != up.Task)
                    throw new ClusterJoinRefusedException($"the cluster removed this member ({cluster.SelfAddress}, host {store.HostId}) before it became Up " +
                        $"({(CoordinatedShutdown.Get(system).ShutdownReason is CoordinatedShutdown.ClusterDowningReason ? "downed" : CoordinatedShutdown.Get(system).ShutdownReason?.GetType().Name ?? "its cluster ended")}); " +
                        "a member that refused its identity proof says why in its log (an ERROR) and counts it in cloudfs_identity_refusals_total");
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"the node did not become an Up member of the cluster within {joinTimeout.TotalSeconds:0} s (seeds: {string.Join(", ", options.Seeds)})");
            }
            // The Up callback and Cluster.State (what placement and management count as live hosts) hear of the
            // event separately; a node is ready only when both do, so a create right after start finds this host.
            var seen = Stopwatch.StartNew();
            while (!cluster.State.Members.Any(m => m.UniqueAddress == cluster.SelfUniqueAddress && m.Status == MemberStatus.Up))
            {
                if (seen.Elapsed > joinTimeout) throw new TimeoutException("the node's own view of the cluster never showed it Up");
                await Task.Delay(5, ct).ConfigureAwait(false);
            }

            settings = settings with { Node = settings.Node with { AkkaPort = cluster.SelfAddress.Port ?? settings.Node.AkkaPort, HostId = store.HostId } };
            var effective = CloudFsConfig.ToOptions(settings, options.ConfigFile);
            var gateway = new ShardedVolumeGateway(volumes, store, settings.Volumes.AskTimeout, settings.Volumes.AttemptTimeout, placement, replication,
                LocalVolumeWriters.Get(system), new VolumeRoutes(store, placement, settings.Management.AskTimeout), WriterAttachments.Get(system));
            log.Info("CloudFS node {0} is up at {1} (device {2})", store.HostId, cluster.SelfAddress, storeOptions.Path);
            var downed = WatchMembership(system, log);
            ExitingBeforeHandOver.Register(system);
            return new NodeIncarnation(system, store, effective, settings, gateway, management, volumes, tls, proven, downed);
        }
        catch
        {
            await system.Terminate().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The current incarnation's actor system (a new one after the node rejoined the cluster).</summary>
    public ActorSystem System => _current.System;
    /// <summary>The log store the current incarnation opened.</summary>
    public LogStore Store => _current.Store;
    /// <summary>The node's certificate directory loaded (null without --tls); disposed with the actor system.</summary>
    public ClusterTls? Tls => _current.Tls;
    /// <summary>The members this node has verified to be the hosts they say (identity proofs).</summary>
    public ProvenHosts ProvenHosts => _current.ProvenHosts;

    /// <summary>What this node's replication moved (feeds served, acknowledgements sent), for its metrics.</summary>
    public ReplicationCounters Replication { get; }
    /// <summary>The members this node refused as hosts (failed identity proofs), remembered after they are gone.</summary>
    public IdentityRefusals IdentityRefusals { get; }
    /// <summary>The read-write NBD attachments this node serves (its NBD server counts them; `cloudfs rm` asks).</summary>
    public VolumeAttachments Attachments { get; }
    public Id160 HostId => Store.HostId;
    /// <summary>Every setting the node runs with, read once at the current incarnation's start (Node.AkkaPort is the
    /// bound port, Node.HostId the log's).</summary>
    public CloudFsSettings Settings => _current.Settings;
    /// <summary>What the node runs with (config file and flags resolved; AkkaPort is the bound port).</summary>
    public NodeOptions Options => _current.Options;
    /// <summary>The volumes of whichever incarnation is current (NBD and HTTP keep this one across rejoins).</summary>
    public IVolumeGateway Gateway { get; }
    /// <summary>The management actor; answers <see cref="Management.IManagementMessage"/> requests.</summary>
    public IActorRef Management => _current.Management;

    /// <summary>
    /// Asks the management actor of the incarnation that can answer: while the node rejoins the cluster, that of the
    /// next one once it is up (within <paramref name="timeout"/>), not the ended one's, which never answers. A request
    /// whose incarnation ends before it answers is not asked again (it may have acted): it fails at once, saying so.
    /// </summary>
    public async Task<T> AskManagementAsync<T>(object request, TimeSpan timeout, CancellationToken ct = default)
    {
        var started = DateTime.UtcNow;
        var incarnation = await NodeIncarnation.LiveAsync(_current, timeout, ct).ConfigureAwait(false);
        var left = timeout - (DateTime.UtcNow - started);
        if (left <= TimeSpan.Zero) throw new AskTimeoutException($"no answer within {timeout.TotalSeconds:0} s: the node was rejoining the cluster");
        var answer = incarnation.Management.Ask<T>(request, left, ct);
        if (await Task.WhenAny(answer, incarnation.System.WhenTerminated).ConfigureAwait(false) != answer)
            throw new NodeUnavailableException("this node left the cluster while it handled the request (it rejoins as a new member); ask again");
        return await answer.ConfigureAwait(false);
    }
    /// <summary>The volume shard region (one shard per host, entity id = volume id hex): send it <see cref="Volumes.VolumeEnvelope"/>s.</summary>
    public IActorRef Volumes => _current.Volumes;

    /// <summary>Leaves the cluster, writes a checkpoint, releases the device.</summary>
    public async ValueTask DisposeAsync()
    {
        NodeIncarnation current;
        lock (_incarnationGate)
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            current = _current;
        }
        _stopping.Cancel();
        // Leaving hands shards off and stops the volume actors; the actor system's end stops the block-device
        // actor last of ours, which checkpoints and releases the device.
        await CoordinatedShutdown.Get(current.System).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).ConfigureAwait(false);
        await current.System.WhenTerminated.ConfigureAwait(false);
        await _membership.ConfigureAwait(false);
        _stopping.Dispose();
    }
}
