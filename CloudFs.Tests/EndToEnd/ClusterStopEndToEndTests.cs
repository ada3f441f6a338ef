// Starting and stopping whole clusters, and what the nodes print meanwhile (issue 15: a normal start and stop of one
// and of three nodes print no WARNING, ERROR or dead letter).
// Three real nodes on 127.0.25.1-3 with a 3-replica sync volume written through its primary get SIGTERM at the same
// moment. Every one exits by itself (0), and from launch to exit none prints a WARN or ERROR line, Akka's own or a
// stack trace: no member offers its singletons to members that are leaving too until a shutdown phase times out,
// nobody warns about peers that stopped with it (AssociationError, gated addresses), the shard coordinator's state
// write does not wait for every member (it did, 5 s and an ERROR, when one was leaving), and the primary's shard
// hand-off drops no replica acknowledgement (its feeds end first). Started again, the three serve the data written
// before. One node on 127.0.29.1, at --log-level debug (Akka's INFO lines, dead letters among them, are printed only
// then), prints no WARN or ERROR and loses none of CloudFS's messages either: its placement and identity checks no
// longer meet a host agent that does not exist yet (the node joins once its actors are there), nor its feeds a shard
// region that stopped.
// A node started before its seed listens says so once, in CloudFS's words, and joins when the seed comes: no WARN
// (Akka's "unreachable remote address" and "Couldn't join seed nodes" lines are debug lines, RemotingLifecycleLines).
// How long a stop takes is measured by bench/stop_bench.py, not asserted here.
using System.Text.RegularExpressions;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed partial class ClusterStopEndToEndTests : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.25.1", "127.0.25.2", "127.0.25.3"];
    private readonly TempDir _dir = new();
    private readonly NodeProcess?[] _nodes = new NodeProcess?[3];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await ProcessCluster.StopAllAsync(_nodes);
        _dir.Dispose();
    }

    private async Task StartAllAsync()
    {
        await ProcessCluster.StartAllAsync(_nodes, i => NodeProcess.StartAsync(Addresses[i], _dir.File($"node{i}.log"), "--seeds", Addresses[0], "--size", "512M"));
        await ProcessCluster.WaitForMembersAsync(_nodes, Addresses);
    }

    // NodeLogger's WARN and ERROR lines, Akka's own (its standard-out logger on stdout, before NodeLogger runs and after
    // it stopped: "[WARNING][...]", "[ERROR][...]"), the first line of a stack trace, and Akka's dead-letter lines.
    [GeneratedRegex(@"^\S+ (WARN |ERROR) \[|^(\[stdout\] )?\[(WARNING|ERROR)\]|^\s+at \S+\(|dead letters encountered")]
    private static partial Regex Noise();

    // The failure detector's word that heartbeats from a member come late: on this shared 2-core machine the test's
    // processes can starve for seconds while other test classes run beside it. It says the machine is overloaded, not
    // that the start or the stop did anything wrong, so it alone is allowed.
    [GeneratedRegex(@"\[Akka\.Remote\.PhiAccrualFailureDetector\] heartbeat interval is growing too large")]
    private static partial Regex Starved();

    // "Message [TYPE] ... to [RECIPIENT] was not delivered. [N] dead letters encountered."
    [GeneratedRegex(@"Message \[(?<type>[^\]]+)\].* to \[(?<to>[^\]]+)\] was not delivered")]
    private static partial Regex DeadLetter();

    // The names of CloudFS's own message types (Akka's dead-letter line names a message by its type's short name).
    private static readonly HashSet<string> OwnMessages = typeof(CloudFs.Actors.Node.CloudFsNode).Assembly.GetTypes().Select(t => t.Name).ToHashSet();

    /// <summary>Whether a dead-letter line is about CloudFS: one of its messages, or a message to one of its actors (under
    /// /user). Akka's own actors lose a few of their internal messages to each other in its shutdown (a rebalance
    /// worker that ended, the cluster's event publisher stopped before its daemon), which CloudFS neither sends nor can
    /// change; Akka prints those at INFO, which a node shows only at --log-level debug.</summary>
    private static bool AboutCloudFs(string line) =>
        DeadLetter().Match(line) is not { Success: true } m
        || OwnMessages.Contains(m.Groups["type"].Value) || m.Groups["to"].Value.Contains("/user/", StringComparison.Ordinal);

    /// <summary>Asserts that <paramref name="node"/> printed no WARN, ERROR, stack trace or dead letter of CloudFS's from
    /// its launch on.</summary>
    private static void AssertQuiet(NodeProcess node, string when)
    {
        var noise = node.Stderr.Split('\n').Where(l => Noise().IsMatch(l) && !Starved().IsMatch(l) && AboutCloudFs(l)).ToArray();
        Assert.True(noise.Length == 0, $"node {node.Listen} printed {when}:\n{string.Join("\n", noise)}\n\nits whole output:\n{node.Stderr}");
    }

    [Fact]
    public async Task Sigterm_to_every_node_at_once_stops_them_all_printing_no_warning_or_error_and_they_restart_with_the_data()
    {
        await StartAllAsync();
        // A member counts as a host for placement once it proved its host id, a moment after it is Up: until then
        // newdisk finds fewer hosts and creates nothing.
        var volume = (await Eventually.Value(async () => await Tool.CloudFs("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", Addresses[0]) is var r
                && !r.Err.Contains("host(s) found", StringComparison.Ordinal) ? r : null,
            TimeSpan.FromSeconds(60), "placement to count three proven hosts")).AssertOk().Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", volume);
        (await Tool.QemuIo(_nodes[0]!.Nbd(volume), "write -P 9 0 1M", "flush")).AssertOk();
        var head = await _nodes[0]!.HeadAsync(volume);
        await Eventually.Value(async () => (await Task.WhenAll(_nodes.Select(n => n!.HeadAsync(volume)))).All(h => h == head) ? "" : null,
            TimeSpan.FromSeconds(30), $"every replica of {volume} at {head}");

        // StopAsync sends SIGTERM before its first await: the three signals leave together, then each exit is awaited
        // (60 s each, far beyond the few seconds a stop takes; bench/stop_bench.py measures those).
        var codes = await Task.WhenAll(_nodes.Select(n => n!.StopAsync()));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(codes[i] == 0, $"node {Addresses[i]} exited {codes[i]}:\n{_nodes[i]!.Stderr}");
            Assert.Contains("SIGTERM received", _nodes[i]!.Stderr);
            Assert.Contains("node stopped", _nodes[i]!.Stderr);
            AssertQuiet(_nodes[i]!, "while it started, served and stopped");
        }

        foreach (var n in _nodes) await n!.DisposeAsync();
        await StartAllAsync();
        // (The head itself may move on after the restart: placement can start a new view of the volume.)
        await Eventually.Value(async () => (await Task.WhenAll(_nodes.Select(n => n!.HeadAsync(volume)))).Distinct().Count() == 1 ? "" : null,
            TimeSpan.FromSeconds(60), $"every replica of {volume} at one head after the restart");
        // Through a node that may not be the primary: it serves once the restarted cluster knows the primary again.
        await Eventually.Value(async () => await Tool.QemuIo(_nodes[1]!.Nbd(volume), "read -P 9 0 1M") is { Code: 0 } read ? read : null,
            TimeSpan.FromSeconds(60), $"reading back what was written to {volume} through {Addresses[1]}");
    }

    [Fact]
    public async Task A_node_started_before_its_seed_says_it_waits_and_joins_it_printing_no_warning()
    {
        const string seedAddress = "127.0.45.1", joinerAddress = "127.0.45.2";
        await using var joiner = NodeProcess.Launch(joinerAddress, _dir.File("joiner.log"), "--seeds", seedAddress, "--size", "512M");
        await Eventually.Until(() => joiner.Stderr.Contains("no seed has let this node in yet", StringComparison.Ordinal) || joiner.HasExited,
            TimeSpan.FromSeconds(120), "the joiner to say it waits for its seed");
        Assert.False(joiner.HasExited, joiner.Stderr);
        await using var seed = await NodeProcess.StartAsync(seedAddress, _dir.File("seed.log"), "--size", "512M");
        await joiner.WaitReadyAsync();
        await ProcessCluster.WaitForMembersAsync([seed, joiner], [seedAddress, joinerAddress]);
        AssertQuiet(joiner, "while it waited for its seed and joined");
        AssertQuiet(seed, "while a member joined it");
    }

    // A node's line (NodeLogger's, or NodeStdoutLogger's when Akka logs without it), or the host's own "cloudfs: ...",
    // either on stderr or, the ready line, on stdout.
    [GeneratedRegex(@"^(\[stdout\] )?(cloudfs: |\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR|DEBUG) \[)")]
    private static partial Regex NodeLine();

    [Fact]
    public async Task One_node_at_the_default_level_prints_every_line_in_the_nodes_format_up_to_its_stop()
    {
        // Akka's logger mailbox hands the events still queued for NodeLogger when it stops to Akka's minimal logger:
        // the framework's INFO "Remoting shut down." came out as "[INFO][12/05/2026 16:17:01.822Z][Thread 0010]...".
        const string address = "127.0.54.4";
        await using var node = await NodeProcess.StartAsync(address, _dir.File("format.log"), "--size", "512M");
        (await Tool.CloudFs("ls", "--contact", address)).AssertOk();

        var code = await node.StopAsync();
        Assert.True(code == 0, $"the node exited {code}:\n{node.Stderr}");
        Assert.Contains("node stopped", node.Stderr);
        var foreign = node.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !NodeLine().IsMatch(l)).ToArray();
        Assert.True(foreign.Length == 0, $"lines not in the node's format:\n{string.Join("\n", foreign)}\n\nits whole output:\n{node.Stderr}");
    }

    [Fact]
    public async Task One_node_started_written_and_stopped_prints_no_warning_error_or_dead_letter_even_at_debug()
    {
        const string address = "127.0.29.1";
        await using var node = await NodeProcess.StartAsync(address, _dir.File("one.log"), "--size", "512M", "--log-level", "debug");
        var volume = (await Tool.CloudFs("newdisk", "1", "--size", "64M", "--contact", address)).AssertOk().Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", volume);
        (await Tool.QemuIo(node.Nbd(volume), "write -P 9 0 1M", "flush")).AssertOk();
        (await Tool.CloudFs("ls", "--contact", address)).AssertOk();

        var code = await node.StopAsync();
        Assert.True(code == 0, $"the node exited {code}:\n{node.Stderr}");
        Assert.Contains("node stopped", node.Stderr);
        AssertQuiet(node, "while it started, served and stopped");
    }
}
