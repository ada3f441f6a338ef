// Real `./cloudfs node` processes joined into one cluster: one per loopback address (default ports), each seeding from
// all of them, started together (the first address is the first seed: it forms the cluster and is its oldest member),
// ready once every node is a member. Stopped, killed and restarted by index; every node ends with the cluster.
namespace CloudFs.Tests.Support;

internal sealed class ProcessCluster : IAsyncDisposable
{
    private readonly Func<int, string> _device;
    private readonly Func<int, string[]> _extra;
    private readonly string[] _cli;
    private readonly string _size;

    /// <summary>The node devices (unless given), and anything else of the test's that should go with the cluster.</summary>
    public TempDir Dir { get; } = new();
    public IReadOnlyList<string> Addresses { get; }
    public string Seeds => string.Join(",", Addresses);
    /// <summary>Null where a node was killed or stopped and not started again.</summary>
    public NodeProcess?[] Nodes { get; }

    private ProcessCluster(IReadOnlyList<string> addresses, Func<int, string>? device, Func<int, string[]>? extra, string size, string[] cli)
    {
        _size = size;
        Addresses = addresses;
        Nodes = new NodeProcess?[addresses.Count];
        _device = device ?? (i => Dir.File($"node{i}.log"));
        _extra = extra ?? (_ => []);
        _cli = cli;
    }

    /// <summary>Starts a node on each of <paramref name="addresses"/> (devices of <paramref name="size"/> in <see cref="Dir"/>
    /// unless <paramref name="device"/> says where; <paramref name="extra"/>: more options of node i) and waits until all
    /// are members; <paramref name="cli"/> is added to the CLI's asks (e.g. --tls DIR). A failed start stops every node.</summary>
    public static async Task<ProcessCluster> StartAsync(IReadOnlyList<string> addresses, Func<int, string[]>? extra = null,
        Func<int, string>? device = null, string size = "512M", params string[] cli)
    {
        var cluster = new ProcessCluster(addresses, device, extra, size, cli);
        try
        {
            // Together: the first seed forms the cluster as soon as the others answer that they are not members yet,
            // instead of waiting out the seed-node timeout for nodes not started.
            await Task.WhenAll(Enumerable.Range(0, addresses.Count).Select(cluster.StartAsync));
            await cluster.WaitForMembersAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public NodeProcess this[int i] => Nodes[i] ?? throw new InvalidOperationException($"the node on {Addresses[i]} is down");

    /// <summary>Starts node <paramref name="i"/> (again) on its device and waits for its ready line.</summary>
    public async Task StartAsync(int i) =>
        Nodes[i] = await NodeProcess.StartAsync(Addresses[i], _device(i), ["--seeds", Seeds, "--size", _size, .. _extra(i)]);

    /// <summary>kill -9 of node <paramref name="i"/>; it is down until started again.</summary>
    public async Task KillAsync(int i)
    {
        await this[i].KillAsync();
        await this[i].DisposeAsync();
        Nodes[i] = null;
    }

    /// <summary>SIGTERM to node <paramref name="i"/>; returns its exit code. It is down until started again.</summary>
    public async Task<int> StopAsync(int i)
    {
        var code = await this[i].StopAsync();
        await this[i].DisposeAsync();
        Nodes[i] = null;
        return code;
    }

    /// <summary>The index of the node whose host id is <paramref name="hostId"/> (-1: none).</summary>
    public int IndexOf(string? hostId) => Array.FindIndex(Nodes, n => n is not null && n.HostId == hostId);

    /// <summary>Every node's output, for a failing test's message.</summary>
    public string Output() => string.Join("\n", Nodes.Select((n, i) =>
        $"node {Addresses[i]}{(n is { HasExited: true } ? $" exited ({n.ExitCode})" : "")}:\n{n?.Stderr}"));

    /// <summary>Until the first live node lists every node as a member.</summary>
    public Task WaitForMembersAsync() => WaitForMembersAsync(Nodes, Addresses, _cli);

    /// <summary>Asks <paramref name="addresses"/>[0] until it lists all of <paramref name="nodes"/> as members (60 s at
    /// most), with <paramref name="cli"/> added to each ask (e.g. --tls DIR); on failure, each node's output.</summary>
    public static async Task WaitForMembersAsync(IReadOnlyList<NodeProcess?> nodes, IReadOnlyList<string> addresses, params string[] cli)
    {
        var show = "";
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!(show = (await Tool.CloudFs(["cluster", "show", "--contact", addresses[0], .. cli])).Out).Contains($"Count: {nodes.Count}"))
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"not {nodes.Count} members within 60 s; last `cluster show`:\n{show}\n" +
                    string.Join("\n", nodes.Select((n, i) => $"node {addresses[i]}{(n is { HasExited: true } ? $" exited ({n.ExitCode})" : "")}:\n{n?.Stderr}")));
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Nodes.OfType<NodeProcess>().Select(async n =>
        {
            n.Resume(); // a node a test stopped with SIGSTOP cannot act on SIGTERM
            await n.DisposeAsync();
        }));
        Dir.Dispose();
    }
}
