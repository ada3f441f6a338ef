// The fixture of an end-to-end test that needs one real `./cloudfs node`: its own loopback address, its own temporary
// directory (device, config), started before and stopped after. A test class holds one per test, or shares one between
// its tests as a class fixture (a subclass naming the address); ProcessCluster is the fixture of a cluster.
namespace CloudFs.Tests.Support;

public class OneNode(string address, params string[] arguments) : IAsyncLifetime
{
    public TempDir Dir { get; } = new();
    public NodeProcess Node { get; private set; } = null!;
    public string Address { get; } = address;

    /// <summary>The text of the node's config file (none when null), written to <see cref="Dir"/> before it starts.</summary>
    public string? Config { get; init; }

    /// <summary>What the node is started with after --listen and --device (a subclass may add to it).</summary>
    protected virtual IEnumerable<string> Arguments => arguments;

    public async Task InitializeAsync() => Node = await StartAsync();

    /// <summary>`./cloudfs ARGS --contact ADDRESS`.</summary>
    public Task<ToolResult> Cli(params string[] args) => Tool.CloudFs([.. args, "--contact", Address]);

    /// <summary>Stops the node with SIGTERM (it must exit cleanly) and starts it again on the same device and
    /// arguments.</summary>
    public async Task RestartAsync()
    {
        Assert.Equal(0, await Node.StopAsync());
        await Node.DisposeAsync();
        Node = null!;
        Node = await StartAsync();
    }

    private async Task<NodeProcess> StartAsync()
    {
        if (Config is null) return await NodeProcess.StartAsync(Address, Dir.File("node.log"), [.. Arguments]);
        var config = Dir.File("node.conf");
        await File.WriteAllTextAsync(config, Config);
        return await NodeProcess.StartAsync(Address, Dir.File("node.log"), [.. Arguments, "--config", config]);
    }

    public virtual async Task DisposeAsync()
    {
        if (Node is not null) await Node.DisposeAsync();
        Dir.Dispose();
    }
}
