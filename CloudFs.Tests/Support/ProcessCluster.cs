// Waiting for real node processes to form one cluster: `cloudfs cluster show` until every one of them is a member.
namespace CloudFs.Tests.Support;

internal static class ProcessCluster
{
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
}
