// Two nodes joined by --seeds form one cluster that either node describes. (Replicated volumes and the
// HTTP redirect to their primary come with the placement service: issue 4.)

namespace CloudFs.Tests.EndToEnd;

public sealed class JoinedNodes : IAsyncLifetime
{
    internal TempDir Dir { get; } = new();
    internal NodeProcess First { get; private set; } = null!;
    internal NodeProcess Second { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        First = await NodeProcess.StartAsync("127.0.0.21", Dir.File("first.log"));
        Second = await NodeProcess.StartAsync("127.0.0.22", Dir.File("second.log"), "--seeds", "127.0.0.21");
    }

    public async Task DisposeAsync()
    {
        if (Second is not null) await Second.DisposeAsync();
        if (First is not null) await First.DisposeAsync();
        Dir.Dispose();
    }
}

public sealed class ClusterEndToEndTests(JoinedNodes nodes) : IClassFixture<JoinedNodes>
{
    [Fact]
    public async Task Cluster_show_on_either_node_lists_both_members()
    {
        foreach (var contact in new[] { nodes.First.Listen, nodes.Second.Listen })
        {
            // Both are Up once their ready lines are out; the other member may take a moment to hear of it (gossip).
            ToolResult show = null!;
            await Eventually.Until(async () => (show = (await Tool.CloudFs("cluster", "show", "--contact", contact)).AssertOk()).Out.Contains("Count: 2"),
                TimeSpan.FromSeconds(30), () => $"two members in `cluster show` on {contact}:\n{show?.Out}");
            // Every member carries its host id as its role "host:<id>".
            Assert.Contains("host:" + nodes.First.HostId, show.Out);
            Assert.Contains(nodes.First.HostId, show.Out);
            Assert.Contains(nodes.Second.HostId, show.Out);
        }
    }
}
