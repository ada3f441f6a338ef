// Three real nodes, each in its own network namespace on one bridge (NetnsLab): a sync volume on all three, then
// the primary is cut off the network. Its side must not acknowledge a sync write; the majority side fails over and
// does; after healing (the old primary restarts when the split brain resolver downed it) there is one history: the
// same head everywhere, every acknowledged write on every node, and a divergent suffix kept as a branch volume.
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace CloudFs.Tests.EndToEnd;

// Alone, like the failover test: on 2 cores the rest of the suite would stall heartbeats and add partitions of its own.
[CollectionDefinition(nameof(PartitionCollection), DisableParallelization = true)]
public sealed class PartitionCollection;

[Collection(nameof(PartitionCollection))]
public sealed partial class PartitionEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    // The log lines that say why a node stopped (downed by the split brain resolver, quarantined ...).
    [System.Text.RegularExpressions.GeneratedRegex(@"UNREACHABLE|SBR took|as \[Down\]|marked as DOWN|[Qq]uarantin|stopped unexpectedly|Exiting with")]
    private static partial System.Text.RegularExpressions.Regex WhyStopped();

    // How long the isolated primary gets to (wrongly) acknowledge a sync write.
    private const string IsolatedWriteTimeout = "15";

    private readonly TempDir _dir = new();
    private readonly NodeProcess?[] _nodes = new NodeProcess?[3];
    private NetnsLab? _lab;
    private string _seeds = "";

    public async Task InitializeAsync()
    {
        // xunit does not call DisposeAsync when InitializeAsync fails: clean up here then, or nodes and
        // namespaces outlive the test.
        try { await SetUpAsync(); }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private async Task SetUpAsync()
    {
        _lab = await NetnsLab.CreateAsync(3);
        _seeds = string.Join(",", Enumerable.Range(0, 3).Select(_lab.Address));
        // Build (if needed) here, outside the namespaces, once.
        (await Tool.CloudFs("--help")).AssertOk();
        await ProcessCluster.StartAllAsync(_nodes, StartAsync);
        await ThreeMembersAsync(TimeSpan.FromSeconds(90), "three members");
    }

    /// <summary>Waits until all three nodes are Up and reachable. A node that stopped meanwhile is restarted (at most
    /// twice, and said in the test output): a member that misses heartbeats for longer than the failure detector's
    /// pause is downed (it then rejoins by itself; a node that stopped anyway is restarted).</summary>
    private async Task ThreeMembersAsync(TimeSpan timeout, string what)
    {
        var restarts = new int[3];
        var stopped = new StringBuilder();
        ToolResult? show = null;
        await Eventually.Until(async () =>
        {
            for (var i = 0; i < 3; i++)
            {
                if (_nodes[i] is not { HasExited: true } gone) continue;
                stopped.Append($"--- node {i} before its restart:\n{gone.Stderr}\n");
                Assert.True(restarts[i]++ < 2, $"node {i} stopped a third time while waiting for {what}\n{stopped}");
                output.WriteLine($"node {i} stopped (exit {gone.ExitCode}) while waiting for {what}; restarting it. Why:");
                foreach (var line in gone.Stderr.Split('\n').Where(l => WhyStopped().IsMatch(l)))
                    output.WriteLine("  " + (line.Length > 400 ? line[..400] : line));
                await gone.DisposeAsync();
                _nodes[i] = null;
                _nodes[i] = await StartAsync(i);
            }
            var contact = Array.FindIndex(_nodes, n => n is { HasExited: false });
            show = await Tool.CloudFs("cluster", "show", "--contact", _lab!.Address(contact));
            return show.Out.Contains("Count: 3") && show.Out.Split('\n').Count(l => l.Contains(" Up Reachable ", StringComparison.Ordinal)) == 3;
        }, timeout, () => $"{what} (last: {show})\n{stopped}{AllStderr()}");
    }

    // --insecure: the namespaces' addresses are not loopback, and this test is about partitions, not trust.
    private Task<NodeProcess> StartAsync(int i) =>
        NodeProcess.StartInAsync(_lab!.Namespace(i), _lab.Address(i), _dir.File($"node{i}.log"), "--seeds", _seeds, "--size", "512M", "--insecure");

    public async Task DisposeAsync()
    {
        // Processes first: a namespace with a process in it outlives `ip netns del`.
        await ProcessCluster.StopAllAsync(_nodes);
        Array.Clear(_nodes);
        if (_lab is not null) await _lab.DisposeAsync();
        _lab = null;
        _dir.Dispose();
    }

    private string Nbd(int i, string volume) => $"nbd://{_lab!.Address(i)}:10809/{volume}";

    private string AllStderr() => string.Join("\n", _nodes.Select((n, i) => $"--- node {i}:\n{n?.Stderr}"));

    private static async Task<JsonElement[]> Volumes(string contact)
    {
        var json = (await Tool.CloudFs("ls", "--json", "--contact", contact)).AssertOk().Out;
        return [.. JsonDocument.Parse(json).RootElement.EnumerateArray()];
    }

    private static async Task<string> PrimaryOf(string volume, string contact)
    {
        foreach (var v in await Volumes(contact))
            if (v.GetProperty("id").GetString() == volume) return v.GetProperty("primary").GetString()!;
        Assert.Fail($"volume {volume} is not in `cloudfs ls`");
        return "";
    }

    /// <summary>This node's /heads line of the volume, read from inside its namespace (works while it is cut off).</summary>
    private async Task<string?> HeadInside(int i, string volume)
    {
        var r = await _lab!.ExecAsync(i, TimeSpan.FromSeconds(10), "curl", "-s", "--max-time", "2", $"http://{_lab.Address(i)}:8090/heads");
        return r.Code != 0 ? null : r.Out.Split('\n').FirstOrDefault(l => l.StartsWith(volume + ":", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Partitioned_primary_cannot_acknowledge_sync_writes_and_healing_leaves_one_history()
    {
        var lab = _lab!;
        var created = (await Tool.CloudFs("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", lab.Address(0))).AssertOk();
        var volume = created.Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", volume);
        (await Tool.QemuIo(Nbd(1, volume), "write -P 0x5a 0 1M", "flush")).AssertOk();
        string[] heads = [];
        await Eventually.Until(async () =>
        {
            heads = await Task.WhenAll(_nodes.Select(n => n!.HeadAsync(volume)));
            return heads.Distinct().Count() == 1 && !heads[0].StartsWith(volume + ":" + volume, StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30), () => $"the same head of {volume} on all three");
        var headBefore = heads[0];

        var primaryHost = await PrimaryOf(volume, lab.Address(0));
        var primary = Array.FindIndex(_nodes, n => n!.HostId == primaryHost);
        Assert.True(primary >= 0, "the primary is none of the three nodes");
        var majority = Enumerable.Range(0, 3).Where(i => i != primary).ToArray();

        await lab.CutAsync(primary);

        // The isolated primary: a sync write through its own NBD (from inside its namespace) is never acknowledged.
        var isolated = lab.ExecAsync(primary, TimeSpan.FromSeconds(60), "timeout", IsolatedWriteTimeout,
            "qemu-io", "-f", "raw", "-c", "write -P 0xee 2M 64k", "-c", "flush", Nbd(primary, volume));
        // Meanwhile its head, as long as it answers: a changed head is a suffix the majority never saw.
        string? isolatedHead = null;
        var watch = Task.Run(async () =>
        {
            while (!isolated.IsCompleted)
            {
                if (await HeadInside(primary, volume) is { } h) isolatedHead = h;
                await Task.Delay(300);
            }
        });

        // The majority side fails over and acknowledges a write (failure detector 6-8 s with its 5 s heartbeat pause, SBR
        // stable-after 4 s, singletons' removal margin 2 s, shard hand-off: ~13-17 s, measured by bench/partition_bench.py;
        // hocon/cloudfs.conf says why the pause is that long).
        ToolResult last = null!;
        // Each attempt bounded (like a client that reconnects): one that went to the old primary before the view change
        // may wait for its replicas far longer than the volume takes to become writable again.
        await Eventually.Until(async () => (last = await Tool.RunAsync("timeout", ["5", Tool.Require("qemu-io"), "-f", "raw", "-c", "write -P 0x7c 8M 64k", "-c", "flush",
                Nbd(majority[0], volume)], TimeSpan.FromSeconds(30))).Code == 0,
            TimeSpan.FromSeconds(60), () => $"a sync write through the majority side (last: {last})\n{AllStderr()}");

        var isolatedResult = await isolated;
        await watch;
        output.WriteLine($"the isolated write ended with {isolatedResult.Code} ({(isolatedResult.Out + isolatedResult.Err).Trim()}); isolated head {isolatedHead ?? "(never read)"}, before {headBefore}");
        Assert.True(isolatedResult.Code != 0, $"the isolated primary acknowledged a sync write:\n{isolatedResult}");
        (await Tool.QemuIoReadOnly(Nbd(majority[1], volume), "read -P 0x5a 0 1M", "read -P 0x7c 8M 64k")).AssertOk();

        // Heal. The old primary comes back as a member: downed by the split brain resolver, it rejoins as a new
        // incarnation by itself (cloudfs.membership); restarted here only if it stopped.
        await lab.HealAsync(primary);
        var old = _nodes[primary]!;
        await Eventually.Until(async () => old.HasExited || (await Tool.CloudFs("cluster", "show", "--contact", lab.Address(majority[0]))).Out.Contains("Count: 3"),
            TimeSpan.FromSeconds(60), () => $"the old primary either rejoins or stops after being downed\n{AllStderr()}");
        output.WriteLine(old.HasExited ? $"the old primary stopped after being downed (exit {old.ExitCode}); restarting it" : "the old primary rejoined without a restart");
        await ThreeMembersAsync(TimeSpan.FromSeconds(90), "the old primary back as a member");

        // One history: the same head on all three, past the failover write, and every acknowledged write everywhere.
        await Eventually.Until(async () =>
        {
            heads = await Task.WhenAll(_nodes.Select(n => n!.HeadAsync(volume)));
            return heads.Distinct().Count() == 1 && heads[0] != headBefore;
        }, TimeSpan.FromSeconds(60), () => $"one head of {volume} on all three after healing (last: {string.Join(" ", heads)})\n{AllStderr()}");
        for (var i = 0; i < 3; i++)
            (await Tool.QemuIoReadOnly(Nbd(i, volume), "read -P 0x5a 0 1M", "read -P 0x7c 8M 64k")).AssertOk();

        // A suffix the isolated primary appended on its own is not lost: it is a separate branch volume in `cloudfs ls`.
        var listed = await Volumes(lab.Address(majority[0]));
        output.WriteLine("cloudfs ls after healing:\n" + string.Join("\n", listed.Select(v => v.ToString())));
        if (isolatedHead is not null && isolatedHead != headBefore)
        {
            var others = listed.Where(v => v.GetProperty("id").GetString() != volume).ToArray();
            Assert.True(others.Length == 1, $"the isolated primary's head moved to {isolatedHead}, but `cloudfs ls` shows no one branch:\n" +
                string.Join("\n", listed.Select(v => v.ToString())) + "\n" + AllStderr());
            // The branch holds what the isolated primary wrote (on top of the common history); the volume does not.
            var branch = others[0].GetProperty("id").GetString()!;
            var readBranch = await Tool.QemuIoReadOnly(Nbd(primary, branch), "read -P 0xee 2M 64k", "read -P 0x5a 0 1M");
            Assert.True(readBranch.Code == 0, $"the branch {branch} does not hold the isolated primary's write:\n{readBranch}\n{AllStderr()}");
            (await Tool.QemuIoReadOnly(Nbd(majority[0], volume), "read -P 0 2M 64k")).AssertOk();
        }
        else
        {
            Assert.Single(listed);
        }
    }
}
