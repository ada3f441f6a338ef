// Several CloudFsNodes in the test process, joined into one cluster over loopback (akka port 0, temp devices).
// Crash() ends a node the way a dead host ends: no leaving, so the others must detect it and down it. Each node's log
// is on a FaultyDevice around its file (no faults unless a test asks; a restart gets a fresh one). Given a test
// authority (or StartTlsAsync), each node runs with --tls: a node certificate of its own host id (the same one across
// restarts), on remoting, the feed port, HTTP and NBD.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Support;

public sealed class TestCluster : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudfs-cluster-").FullName;
    private readonly string _crashConfig;
    public List<CloudFsNode?> Nodes { get; } = new();
    private readonly Dictionary<int, FaultyDevice> _devices = new();
    private readonly TestAuthority? _authority;
    private readonly bool _ownsAuthority;
    private readonly string _listen;
    // Node i's host id and certificate directory, with an authority.
    private readonly Dictionary<int, (Id160 Host, string Directory)> _certificates = new();

    // Tests: changes each node's options (its listen address, host id, certificate directory) before it starts.
    private readonly Func<int, NodeOptions, NodeOptions>? _adjust;

    private TestCluster(string extraConfig, TestAuthority? authority = null, string listen = "127.0.0.1", bool ownsAuthority = false,
        Func<int, NodeOptions, NodeOptions>? adjust = null)
    {
        _authority = authority;
        _ownsAuthority = ownsAuthority;
        _listen = listen;
        _adjust = adjust;
        // A crashed node must not leave the cluster on its way out: the survivors find out by themselves.
        _crashConfig = Path.Combine(_dir, "crash.conf");
        // The nodes share this process (one GC, one thread pool) and the machine's 2 cores with the test itself: a stall
        // of a few seconds must not get a healthy member marked unreachable and downed by the split brain resolver
        // (the cluster falls apart mid-test). A crash here closes the node's port, which the crash detector sees at once,
        // so no test waits on the failure detector.
        File.WriteAllText(_crashConfig, "akka.coordinated-shutdown.run-by-actor-system-terminate = off\ncloudfs.placement.tick = 500ms\ncloudfs.placement.replace-after = 3s\n" +
            "akka.cluster.failure-detector.acceptable-heartbeat-pause = 10s\n" +
            // Joins and removals take a gossip round and a leader round each: on loopback they can be short.
            "akka.cluster.gossip-interval = 250ms\nakka.cluster.leader-actions-interval = 250ms\nakka.cluster.periodic-tasks-initial-delay = 100ms\n" +
            // Compaction reclaims history at once (cloudfs.retention.time keeps 24 h of it by default): the tests of
            // resync, repair and compaction need it gone; a test of retention sets it in extraConfig.
            "cloudfs.retention.time = 0\n" + extraConfig);
    }

    public static Task<TestCluster> StartAsync(int count) => StartAsync(count, "");

    /// <summary>As above with more HOCON for every node (e.g. small segments, so compaction reclaims history soon).</summary>
    public static Task<TestCluster> StartAsync(int count, string extraConfig) => StartAsync(new TestCluster(extraConfig), count);

    /// <summary>As above, every node with --tls (certificates from <paramref name="authority"/>), listening on <paramref name="listen"/>.</summary>
    internal static Task<TestCluster> StartAsync(int count, string extraConfig, TestAuthority? authority, string listen = "127.0.0.1") =>
        StartAsync(new TestCluster(extraConfig, authority, listen), count);

    /// <summary>Nodes with --tls: each with its own node certificate of a test authority of its own (<see cref="Authority"/>).</summary>
    public static Task<TestCluster> StartTlsAsync(int count, string extraConfig = "") =>
        StartAsync(new TestCluster(extraConfig, new TestAuthority(), ownsAuthority: true), count);

    /// <summary>As above, each node's options changed by <paramref name="adjust"/> (node index, options) first.</summary>
    public static Task<TestCluster> StartAsync(int count, string extraConfig, Func<int, NodeOptions, NodeOptions>? adjust) =>
        StartAsync(new TestCluster(extraConfig, adjust: adjust), count);

    /// <summary>The authority the nodes' certificates come from (null without TLS).</summary>
    internal TestAuthority? Authority => _authority;

    private static async Task<TestCluster> StartAsync(TestCluster cluster, int count)
    {
        try
        {
            // Node 0 forms the cluster (the oldest member: it runs the singletons); the others join it together.
            if (count > 0) cluster.Nodes.Add(await cluster.StartNodeAsync(0));
            var joining = Enumerable.Range(1, Math.Max(0, count - 1)).Select(cluster.StartNodeAsync).ToArray();
            try { await Task.WhenAll(joining); }
            finally { cluster.Nodes.AddRange(joining.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result)); }
            await cluster.WaitForMembersAsync(count);
            return cluster;
        }
        catch (Exception e)
        {
            // What the members that did start saw (removals, downings, the split brain resolver's decisions) says why.
            var journal = cluster.Journal(80);
            await cluster.DisposeAsync();
            throw new InvalidOperationException($"a cluster of {count} nodes did not start: {e.Message}\n{journal}", e);
        }
    }

    private NodeOptions Options(int i, int? seedPort)
    {
        var options = BaseOptions(i, seedPort);
        return _adjust is null ? options : _adjust(i, options);
    }

    private NodeOptions BaseOptions(int i, int? seedPort) => new()
    {
        DevicePath = Path.Combine(_dir, $"node{i}.log"),
        Size = 256 << 20,
        AkkaPort = 0,
        Listen = _listen,
        Seeds = seedPort is { } p ? [$"{SeedHost}:{p}"] : [],
        ConfigFile = _crashConfig,
        HostId = Certificate(i)?.Host,
        TlsDirectory = Certificate(i)?.Directory,
        AdjustStore = o => o with { WrapDevice = d => { var faulty = new FaultyDevice(d); lock (_devices) _devices[i] = faulty; return faulty; } },
    };

    /// <summary>Node <paramref name="i"/>'s certificate directory (with an authority; null without).</summary>
    internal string? CertificateDirectory(int i) => Certificate(i)?.Directory;

    private (Id160 Host, string Directory)? Certificate(int i)
    {
        if (_authority is null) return null;
        lock (_certificates)
        {
            if (!_certificates.TryGetValue(i, out var issued))
            {
                var host = Id160.Random();
                _certificates[i] = issued = (host, _authority.Node($"node{i}-{host}", host, _listen));
            }
            return issued;
        }
    }

    /// <summary>The device under node <paramref name="i"/>'s log (of its current incarnation): fail it to fail the node's disk.</summary>
    internal FaultyDevice Device(int i)
    {
        lock (_devices) return _devices[i];
    }

    private int? SeedPort => Nodes.FirstOrDefault(n => n is not null)?.Options.AkkaPort;
    private string SeedHost => Nodes.FirstOrDefault(n => n is not null)?.Options.Listen ?? _listen;

    public async Task<CloudFsNode> StartNodeAsync(int i) =>
        Watch(i, await CloudFsNode.StartAsync(Options(i, SeedPort)).WaitAsync(TimeSpan.FromSeconds(60)));

    // What the nodes said and saw (their warnings and errors, members lost and found), for a failing test's message.
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _journal = new();

    /// <summary>The last <paramref name="lines"/> warnings, errors and membership changes of every node, oldest first.</summary>
    public string Journal(int lines = 40) => string.Join("\n", _journal.TakeLast(lines));

    /// <summary>As <see cref="Eventually.Until(Func{bool}, TimeSpan, string)"/>; a timeout also says what each node sees and logged.</summary>
    public Task Until(Func<bool> condition, TimeSpan timeout, string what) => Eventually.Until(condition, timeout, () => Explain(what));

    /// <summary>As <see cref="Eventually.Value{T}(Func{Task{T}}, TimeSpan, string)"/>; a timeout also says what each node sees and logged.</summary>
    public Task<T> Value<T>(Func<Task<T?>> probe, TimeSpan timeout, string what) where T : class => Eventually.Value(probe, timeout, () => Explain(what));

    /// <summary><paramref name="what"/> with the members each node sees and the nodes' last warnings: what a timeout says.</summary>
    public string Explain(string what) => $"{what}\nmembers: {Membership()}\n{Journal()}";

    /// <summary>A volume created through node <paramref name="via"/>, as `cloudfs newdisk` would: asked again while
    /// placement has not heard from enough hosts yet ("only N host(s) found": right after start a member can be Up before
    /// every node has proven it), for <paramref name="timeout"/> (60 s) at most. Another refusal fails the test at once
    /// with placement's own reason; a timeout says every answer. Either says the members each node sees and the nodes'
    /// last warnings.</summary>
    public async Task<VolumeCreated> CreateVolumeAsync(int replicas, long size, VolumeMode mode, int via = 0, TimeSpan? timeout = null)
    {
        var answers = new List<string>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var reply = await Eventually.Value(async () =>
        {
            // Longer than management's own wait for placement, so its answer, not this timeout, says what went wrong.
            var answer = await this[via].Management.Ask<IManagementMessage>(new CreateVolume(replicas, size, mode), TimeSpan.FromSeconds(60));
            answers.Add($"{clock.Elapsed.TotalSeconds:0.0} s: {(answer as CommandFailed)?.Reason ?? answer.GetType().Name}");
            return answer is CommandFailed f && f.Reason.Contains("host(s) found", StringComparison.Ordinal) ? null : answer;
        }, timeout ?? TimeSpan.FromSeconds(60), () => Explain($"a volume of {replicas} replicas through node {via}; answers: {string.Join(" | ", answers)}"));
        return reply as VolumeCreated ?? throw new InvalidOperationException(
            Explain($"creating a volume of {replicas} replicas through node {via} failed: {(reply as CommandFailed)?.Reason ?? reply.GetType().Name}"));
    }

    /// <summary>Asks node <paramref name="via"/>'s management actor; an answer other than a <typeparamref name="T"/> fails the
    /// test with the reason it gives.</summary>
    public static async Task<T> AskAsync<T>(CloudFsNode via, IManagementMessage request, TimeSpan timeout) where T : IManagementMessage =>
        await via.Management.Ask<IManagementMessage>(request, timeout) switch
        {
            T answer => answer,
            var other => throw new InvalidOperationException($"{request.GetType().Name} failed: {(other as CommandFailed)?.Reason ?? other.GetType().Name}"),
        };

    /// <summary>Waits until every live node holds <paramref name="volume"/> at <paramref name="lsn"/> or later, all at one version.</summary>
    public Task HeadsAgree(Id160 volume, long lsn, TimeSpan timeout) =>
        Until(() =>
        {
            var heads = Live.Select(n => n.Store.GetVolume(volume)).ToArray();
            return heads.All(h => h is not null && h.Lsn >= lsn) && heads.Select(h => h!.CurrentVersion).Distinct().Count() == 1;
        }, timeout, $"every replica of {volume} at lsn {lsn}");

    /// <summary>Each live node's view of the members: port, status, and whether it sees it unreachable.</summary>
    public string Membership() => string.Join("; ", Live.Select(n =>
    {
        var state = Akka.Cluster.Cluster.Get(n.System).State;
        return $"node {Nodes.IndexOf(n)} sees " + string.Join(",", state.Members.Select(m =>
            $"{m.Address.Port} {m.Status}{(state.Unreachable.Contains(m) ? " unreachable" : "")}"));
    }));

    private CloudFsNode Watch(int i, CloudFsNode node)
    {
        var journal = _journal;
        var listener = node.System.ActorOf(Akka.Actor.Props.Create(() => new JournalActor(i, journal)));
        node.System.EventStream.Subscribe(listener, typeof(Akka.Event.Warning));
        node.System.EventStream.Subscribe(listener, typeof(Akka.Event.Error));
        Akka.Cluster.Cluster.Get(node.System).Subscribe(listener, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(Akka.Cluster.ClusterEvent.UnreachableMember), typeof(Akka.Cluster.ClusterEvent.ReachableMember),
            typeof(Akka.Cluster.ClusterEvent.MemberDowned), typeof(Akka.Cluster.ClusterEvent.MemberRemoved));
        return node;
    }

    private sealed class JournalActor : Akka.Actor.ReceiveActor
    {
        public JournalActor(int node, System.Collections.Concurrent.ConcurrentQueue<string> journal)
        {
            void Add(string line) => journal.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} node {node}: {line}");
            Receive<Akka.Event.LogEvent>(e => Add($"{e.LogLevel()} [{e.LogSource}] {e.Message}"));
            Receive<Akka.Cluster.ClusterEvent.MemberStatusChange>(e => Add($"{e.GetType().Name} {e.Member.Address} ({e.Member.Status})"));
            Receive<Akka.Cluster.ClusterEvent.ReachabilityEvent>(e => Add($"{e.GetType().Name} {e.Member.Address}"));
        }
    }

    public CloudFsNode this[int i] => Nodes[i] ?? throw new InvalidOperationException($"node {i} is down");

    public CloudFsNode NodeOf(string hostId) => Nodes.First(n => n is not null && n.HostId.ToString() == hostId)!;

    public int IndexOf(string hostId) => Nodes.FindIndex(n => n is not null && n.HostId.ToString() == hostId);

    public IEnumerable<CloudFsNode> Live => Nodes.Where(n => n is not null)!;

    /// <summary>Every node sees <paramref name="count"/> Up members and has verified each one's host id (so placement,
    /// which chooses only proven hosts, counts them all for the first create).</summary>
    public async Task WaitForMembersAsync(int count) =>
        await Until(() => Live.All(n => Akka.Cluster.Cluster.Get(n.System).State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) == count
                && Live.All(m => n.ProvenHosts.OfHost(m.HostId) is not null)),
            TimeSpan.FromSeconds(60), $"{count} Up members, each proven to every node");

    /// <summary>Every live node sees every live node (its current incarnation) Up and reachable, and proven: what a
    /// cluster-wide command (scrub, verify) asks of the hosts it reaches (HostDirectory.Live). A restarted node sees
    /// itself Up before the others have all heard of it, and its store's head is already there.</summary>
    public Task EveryoneSeesEveryoneAsync(TimeSpan timeout) =>
        Until(() => Live.All(n =>
            {
                var state = Akka.Cluster.Cluster.Get(n.System).State;
                return Live.All(m =>
                {
                    var self = Akka.Cluster.Cluster.Get(m.System).SelfUniqueAddress;
                    return state.Members.Any(x => x.UniqueAddress == self && x.Status == Akka.Cluster.MemberStatus.Up)
                        && !state.Unreachable.Any(x => x.UniqueAddress == self) && n.ProvenHosts.OfHost(m.HostId) is not null;
                });
            }), timeout, "every node sees every other Up, reachable and proven");

    /// <summary>Ends node <paramref name="i"/> as a crash would (no leaving); its device is released for a restart.</summary>
    public async Task CrashAsync(int i)
    {
        var node = this[i];
        Nodes[i] = null;
        await node.System.Terminate().WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Starts node <paramref name="i"/> again on its log, and returns once every live node sees every other
    /// (the new incarnation too) Up, reachable and proven: a restarted node sees itself Up before the others have all
    /// heard of it, and a cluster-wide command (scrub, verify) asks only the hosts its node sees.</summary>
    public async Task RestartAsync(int i)
    {
        Nodes[i] = Watch(i, await CloudFsNode.StartAsync(Options(i, Live.First().Options.AkkaPort)).WaitAsync(TimeSpan.FromSeconds(60)));
        await EveryoneSeesEveryoneAsync(TimeSpan.FromSeconds(60));
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Nodes.Where(n => n is not null).Select(async node =>
        {
            try { await node!.System.Terminate().WaitAsync(TimeSpan.FromSeconds(30)); }
            catch (Exception) { /* best effort: the test already reported its own failure */ }
        }));
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
        if (_ownsAuthority) _authority?.Dispose();
    }
}
