// The fixture of an end-to-end test that needs a cluster of real ./cloudfs processes: one node per address, each the
// others' seed, in a temporary directory of their own, started together and waited for as members, stopped together.
// Its static helpers start, wait for and stop nodes that a test starts its own way (TLS, network namespaces, faulty
// disks).
namespace CloudFs.Tests.Support;

public sealed class ProcessCluster(IReadOnlyList<string> addresses, params string[] arguments) : IAsyncLifetime
{
    public IReadOnlyList<string> Addresses { get; } = addresses;
    public TempDir Dir { get; } = new();
    /// <summary>Node i's process; null while it is stopped.</summary>
    public NodeProcess?[] Nodes { get; } = new NodeProcess?[addresses.Count];
    public string Seeds => string.Join(",", Addresses);

    public async Task InitializeAsync()
    {
        // xunit does not dispose a class whose InitializeAsync failed: the nodes started so far are stopped here, or
        // they would hold the addresses for the next run.
        try
        {
            await StartAllAsync(Nodes, StartAsync);
            await WaitForMembersAsync(Nodes, Addresses);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts node <paramref name="i"/> on its device (again, after a stop or a kill), the others its seeds.</summary>
    public Task<NodeProcess> StartAsync(int i) =>
        NodeProcess.StartAsync(Addresses[i], Dir.File($"node{i}.log"), ["--seeds", Seeds, .. arguments]);

    /// <summary>kill -9 of node <paramref name="i"/>: no shutdown code runs; its slot is empty until started again.</summary>
    public async Task KillAsync(int i)
    {
        await Nodes[i]!.KillAsync();
        await Nodes[i]!.DisposeAsync();
        Nodes[i] = null;
    }

    /// <summary>What each node printed: what a failed wait shows.</summary>
    public string Output() => Output(Nodes, Addresses);

    public async Task DisposeAsync()
    {
        await StopAllAsync(Nodes);
        Dir.Dispose();
    }

    /// <summary>
    /// Starts node i of <paramref name="nodes"/> with <paramref name="start"/>(i), all at once, and waits until every
    /// one is ready (each is stored as it is). Started one after another, the first seed would wait out Akka's
    /// seed-node-timeout (5 s) for seeds that are not running yet before it forms the cluster; started together, the
    /// others answer it at once.
    /// </summary>
    public static Task StartAllAsync(NodeProcess?[] nodes, Func<int, Task<NodeProcess>> start) =>
        Task.WhenAll(Enumerable.Range(0, nodes.Length).Select(async i => nodes[i] = await start(i)));

    /// <summary>Stops every node at once (SIGTERM to each, then each exit awaited), as an operator stops a cluster:
    /// one after another, each leaving member hands its shards and singletons to members that leave next.</summary>
    public static Task StopAllAsync(IEnumerable<NodeProcess?> nodes) =>
        Task.WhenAll(nodes.Where(n => n is not null).Select(n => n!.DisposeAsync().AsTask()));

    /// <summary>Asks <paramref name="addresses"/>[0] until it lists all of <paramref name="nodes"/> as members (60 s at
    /// most), with <paramref name="cli"/> added to each ask (e.g. --tls DIR); on failure, each node's output.</summary>
    public static async Task WaitForMembersAsync(IReadOnlyList<NodeProcess?> nodes, IReadOnlyList<string> addresses, params string[] cli)
    {
        var show = "";
        await Eventually.Until(async () => (show = (await Tool.CloudFs(["cluster", "show", "--contact", addresses[0], .. cli])).Out).Contains($"Count: {nodes.Count}"),
            TimeSpan.FromSeconds(60), () => $"{nodes.Count} members; last `cluster show`:\n{show}\n{Output(nodes, addresses)}");
    }

    /// <summary>What each node printed, headed by its address (and its exit code when it exited): what a failed wait shows.</summary>
    public static string Output(IReadOnlyList<NodeProcess?> nodes, IReadOnlyList<string> addresses) =>
        string.Join("\n", nodes.Select((n, i) => $"node {addresses[i]}{(n is { HasExited: true } ? $" exited ({n.ExitCode})" : "")}:\n{n?.Stderr}"));
}
