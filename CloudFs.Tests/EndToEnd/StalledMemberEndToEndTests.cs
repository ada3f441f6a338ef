// Three real nodes on 127.0.13.11-13: the primary of a sync volume is stopped (SIGSTOP, a stall no heartbeat
// survives) until the others have downed and removed it and failed the volume over, then continued. No process exits:
// the stalled node rejoins as a new incarnation, and the volume is writable through it and the same on all three.
using System.Text.Json;
using Xunit.Abstractions;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class StalledMemberEndToEndTests : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.13.11", "127.0.13.12", "127.0.13.13"];
    // Generous: the machine these tests run on is often loaded far beyond its 2 cores.
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);
    // No sweep within the test: the stalled primary, which comes back still holding its old view's secret, must step
    // down when placement first hears from it, not when a sweep re-sends every follow command (2 minutes by default).
    private readonly string _config = WriteConfig("cloudfs.placement.sweep = 10m\n");
    private readonly ProcessCluster _cluster;

    public StalledMemberEndToEndTests(ITestOutputHelper output)
    {
        _output = output;
        _cluster = new(Addresses, "--size", "512M", "--config", _config);
    }

    private readonly ITestOutputHelper _output;

    private static string WriteConfig(string hocon)
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, hocon);
        return path;
    }
    private NodeProcess?[] Nodes => _cluster.Nodes;

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public async Task DisposeAsync()
    {
        foreach (var n in Nodes) n?.Resume(); // never leave a stopped process behind
        await _cluster.DisposeAsync();
        File.Delete(_config);
    }

    /// <summary><paramref name="what"/> with every node's output: what a failed wait shows.</summary>
    private string Explain(string what) => $"{what}\n{_cluster.Output()}";

    private static async Task<int> Members(string contact)
    {
        var show = await Tool.CloudFs("cluster", "show", "--contact", contact);
        var line = show.Out.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("Count:", StringComparison.Ordinal));
        return line is not null && int.TryParse(line.Split(':')[1].Trim(), out var count) ? count : -1;
    }

    private static async Task<string?> PrimaryOf(string volume, string contact)
    {
        var ls = await Tool.CloudFs("ls", "--json", "--contact", contact);
        if (ls.Code != 0) return null;
        foreach (var v in JsonDocument.Parse(ls.Out).RootElement.EnumerateArray())
            if (v.GetProperty("id").GetString() == volume) return v.GetProperty("primary").GetString();
        return null;
    }

    [Fact]
    public async Task A_primary_stalled_until_it_is_removed_rejoins_without_any_node_exiting_and_its_volume_replicates_again()
    {
        var created = (await Tool.CloudFs("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", Addresses[0])).AssertOk();
        var volume = created.Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", volume);
        (await Tool.QemuIo(Nodes[1]!.Nbd(volume), "write -P 0x5a 0 1M", "flush")).AssertOk();
        var primaryHost = await PrimaryOf(volume, Addresses[0]);
        var stalled = Array.FindIndex(Nodes, n => n!.HostId == primaryHost);
        Assert.True(stalled >= 0, $"the primary {primaryHost} is none of the three nodes");
        var others = Enumerable.Range(0, 3).Where(i => i != stalled).ToArray();

        Nodes[stalled]!.Pause();
        try
        {
            // The others down and remove it, and fail its volume over: a write through a survivor is acknowledged.
            await Eventually.Until(async () => await Members(Addresses[others[0]]) == 2, Timeout, () => Explain("the stalled member removed"));
            await Eventually.Until(async () => (await Tool.QemuIo(Nodes[others[0]]!.Nbd(volume), "write -P 0x7c 8M 64k", "flush")).Code == 0,
                Timeout, () => Explain("a write through a survivor while the primary is stalled"));
        }
        finally
        {
            Nodes[stalled]!.Resume();
        }

        // It comes back as a member by itself: three members, and no process exited.
        await Eventually.Until(async () => await Members(Addresses[others[0]]) == 3 && await Members(Addresses[stalled]) == 3, Timeout, () => Explain("the stalled node back as a member"));
        Assert.All(Nodes, n => Assert.False(n!.HasExited, $"node {n.Listen} exited ({(n.HasExited ? n.ExitCode : 0)}):\n{n.Stderr}"));
        Assert.Contains("rejoined the cluster as", Nodes[stalled]!.Stderr);

        // Writable through it (its NBD server kept listening), and one history on all three with every acknowledged write.
        await Eventually.Until(async () => (await Tool.QemuIo(Nodes[stalled]!.Nbd(volume), "write -P 0x3d 12M 64k", "flush")).Code == 0,
            Timeout, () => Explain("a write through the node that was stalled"));
        string[] heads = [];
        await Eventually.Until(async () =>
        {
            heads = await Task.WhenAll(Nodes.Select(n => n!.HeadAsync(volume)));
            return heads.Distinct().Count() == 1;
        }, Timeout, () => Explain($"the same head of {volume} on all three"));
        foreach (var n in Nodes)
            (await Tool.QemuIoReadOnly(n!.Nbd(volume), "read -P 0x5a 0 1M", "read -P 0x7c 8M 64k", "read -P 0x3d 12M 64k")).AssertOk();
        Assert.All(Nodes, n => Assert.False(n!.HasExited, $"node {n.Listen} exited:\n{n.Stderr}"));
        _output.WriteLine($"stalled node {Addresses[stalled]}:\n" + string.Join("\n", Nodes[stalled]!.Stderr.Split('\n').Where(l => l.Contains("CloudFsNode", StringComparison.Ordinal))));
    }
}
