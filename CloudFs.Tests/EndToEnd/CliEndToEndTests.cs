// The cloudfs commands against a real node: newdisk, ls (and --json), info, heads, branch, cluster show, and the refusals
// (too few hosts, busy port, held device), plus a clean stop on SIGTERM.
using System.Text.Json;

namespace CloudFs.Tests.EndToEnd;

public sealed class CliNode() : OneNode("127.0.0.16");

public sealed class CliEndToEndTests(CliNode fixture) : IClassFixture<CliNode>
{
    private NodeProcess Node => fixture.Node;

    [Fact]
    public async Task Newdisk_asking_more_replicas_than_hosts_fails_naming_the_host_count()
    {
        var before = (await Tool.CloudFs("ls", "--contact", Node.Listen)).AssertOk().Out;
        var r = await Tool.CloudFs("newdisk", "2", "--size", "16M", "--contact", Node.Listen);
        Assert.NotEqual(0, r.Code);
        Assert.Equal("", r.Out);
        Assert.Contains("only 1 host(s) found", r.Err);
        Assert.Equal(before, (await Tool.CloudFs("ls", "--contact", Node.Listen)).AssertOk().Out);
    }

    [Fact]
    public async Task Newdisk_prints_the_id_on_stdout_and_the_hosts_on_stderr_and_ls_shows_nine_fields()
    {
        var r = (await Tool.CloudFs("newdisk", "1", "--size", "16M", "--contact", Node.Listen)).AssertOk();
        var volume = r.Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", volume);
        Assert.Contains(Node.HostId, r.Err);

        var ls = (await Tool.CloudFs("ls", "--contact", Node.Listen)).AssertOk();
        var fields = ls.Out.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Single(f => f.Length > 0 && f[0] == volume);
        Assert.Equal(9, fields.Length);
        Assert.Equal((16L << 20).ToString(), fields[1]);
        Assert.Equal("async", fields[2]);
        Assert.Equal(Node.HostId, fields[3]);
        Assert.Equal(Node.HostId, fields[4]);
        Assert.Equal(volume, fields[5]);
        Assert.Equal(["-", "healthy", "-"], fields[6..]);

        using var json = JsonDocument.Parse((await Tool.CloudFs("ls", "--json", "--contact", Node.Listen)).AssertOk().Out);
        var v = json.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetString() == volume);
        Assert.Equal(16L << 20, v.GetProperty("size").GetInt64());
        Assert.Equal("async", v.GetProperty("mode").GetString());
        Assert.Equal(Node.HostId, v.GetProperty("primary").GetString());
        Assert.Equal(Node.HostId, v.GetProperty("replicas")[0].GetString());
        Assert.Equal(volume, v.GetProperty("version").GetString());
        Assert.Equal(JsonValueKind.Null, v.GetProperty("name").ValueKind);
        Assert.Equal("healthy", v.GetProperty("health").GetString());
        Assert.Equal(JsonValueKind.Null, v.GetProperty("parent").ValueKind);
    }

    [Fact]
    public async Task Info_and_heads_follow_the_volume_version_after_a_write()
    {
        var volume = await Node.NewDiskAsync("16M");
        Assert.Equal(volume, (await Tool.CloudFs("info", volume, "--contact", Node.Listen)).AssertOk().Out.Trim());
        (await Tool.QemuIo(Node.Nbd(volume), "write -P 9 0 4k", "flush")).AssertOk();
        var heads = (await Tool.CloudFs("heads", "--http", Node.Listen)).AssertOk().Out;
        var line = heads.Split('\n').Single(l => l.StartsWith(volume + ":", StringComparison.Ordinal));
        var current = line.Split(':')[1];
        Assert.NotEqual(volume, current);
        Assert.Equal(current, (await Tool.CloudFs("info", volume, "--contact", Node.Listen)).AssertOk().Out.Trim());
    }

    [Fact]
    public async Task Branch_of_a_volume_id_is_a_branch_of_its_current_version_and_of_a_version_id_of_that_version()
    {
        var volume = await Node.NewDiskAsync("16M");
        (await Tool.QemuIo(Node.Nbd(volume), "write -P 0x21 0 64k", "flush")).AssertOk();
        var first = (await Tool.CloudFs("info", volume, "--contact", Node.Listen)).AssertOk().Out.Trim();
        (await Tool.QemuIo(Node.Nbd(volume), "write -P 0x42 0 64k", "flush")).AssertOk();

        // A volume id names the volume (SPEC.md): its current version, not the empty version it was created as.
        var ofVolume = (await Tool.CloudFs("branch", volume, "--contact", Node.Listen)).AssertOk().Out.Trim();
        (await Tool.QemuIo(Node.Nbd(ofVolume), "read -P 0x42 0 64k")).AssertOk();
        var ofVersion = (await Tool.CloudFs("branch", first, "--contact", Node.Listen)).AssertOk().Out.Trim();
        (await Tool.QemuIo(Node.Nbd(ofVersion), "read -P 0x21 0 64k")).AssertOk();

        using var json = JsonDocument.Parse((await Tool.CloudFs("ls", "--json", "--contact", Node.Listen)).AssertOk().Out);
        string? ParentOf(string id) => json.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetString() == id).GetProperty("parent").GetString();
        var current = (await Tool.CloudFs("info", volume, "--contact", Node.Listen)).AssertOk().Out.Trim();
        Assert.Equal((current, first), (ParentOf(ofVolume), ParentOf(ofVersion)));
    }

    [Fact]
    public async Task Cluster_show_lists_this_member_and_the_count()
    {
        var r = (await Tool.CloudFs("cluster", "show", "--contact", Node.Listen)).AssertOk();
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Count: 1", lines[^1]);
        Assert.Contains(Node.HostId, lines[0]);
        Assert.Contains("Up", lines[0]);
    }

    [Fact]
    public async Task Cluster_leader_and_status_and_sharding_regions_and_stats_print_json_with_json()
    {
        var leader = JsonDocument.Parse((await Tool.CloudFs("cluster", "leader", "--json", "--contact", Node.Listen)).AssertOk().Out).RootElement;
        Assert.EndsWith($"@{Node.Listen}:4053", leader.GetProperty("leader").GetString());

        var status = JsonDocument.Parse((await Tool.CloudFs("cluster", "status", "--json", "--contact", Node.Listen)).AssertOk().Out).RootElement;
        Assert.Equal(leader.GetProperty("leader").GetString(), status.GetProperty("address").GetString());
        Assert.Equal("Up", status.GetProperty("status").GetString());

        var regions = JsonDocument.Parse((await Tool.CloudFs("sharding", "regions", "--json", "--contact", Node.Listen)).AssertOk().Out).RootElement;
        var region = Assert.Single(regions.EnumerateArray());
        Assert.Equal("volume", region.GetProperty("type").GetString());
        Assert.Equal(status.GetProperty("address").GetString(), region.GetProperty("address").GetString());

        var stats = JsonDocument.Parse((await Tool.CloudFs("sharding", "stats", "--json", "--contact", Node.Listen)).AssertOk().Out).RootElement;
        var regionStats = Assert.Single(stats.EnumerateArray());
        Assert.Equal("volume", regionStats.GetProperty("type").GetString());
        Assert.Equal(regionStats.GetProperty("entities").GetInt32(), regionStats.GetProperty("shards").EnumerateArray().Sum(s => s.GetProperty("entities").GetInt32()));
    }

    [Fact]
    public async Task Apply_with_json_prints_the_entries_applied_and_the_volumes_head()
    {
        var volume = (await Tool.CloudFs("newdisk", "1", "--size", "16M", "--contact", Node.Listen)).AssertOk().Out.Trim();
        (await Tool.QemuIo(Node.Nbd(volume), "write -P 7 0 64k", "flush")).AssertOk();
        var head = (await Tool.CloudFs("info", volume, "--contact", Node.Listen)).AssertOk().Out.Trim();

        // The node holds every entry already: none is applied again, and the answer names the head it has.
        var applied = (await Tool.Bash(
            $"set -o pipefail; '{Repo.CloudFsScript}' stream {volume} --http {Node.Listen} | '{Repo.CloudFsScript}' apply --json --http {Node.Listen}")).AssertOk();
        var json = JsonDocument.Parse(applied.Out).RootElement;
        Assert.Equal(0, json.GetProperty("applied").GetInt32());
        Assert.Equal(volume, json.GetProperty("volume").GetString());
        Assert.Equal(head, json.GetProperty("version").GetString());
    }

    [Fact]
    public async Task A_second_node_on_busy_ports_or_a_held_device_refuses_with_one_sentence()
    {
        var busy = await NodeProcess.StartExpectingFailureAsync(Node.Listen, fixture.Dir.File("other.log"));
        Assert.NotEqual(0, busy.Code);
        Assert.Contains("already in use", busy.Stderr);

        var held = await NodeProcess.StartExpectingFailureAsync("127.0.0.17", Node.Device);
        Assert.NotEqual(0, held.Code);
        Assert.Contains("cloudfs:", held.Stderr);

        var nuke = await Tool.CloudFs("nuke", Node.Device);
        Assert.NotEqual(0, nuke.Code);
        Assert.Contains("cloudfs:", nuke.Err);
        Assert.Contains(Node.HostId, await Node.HeadsAsync() + Node.ReadyLine);
    }
}

public sealed class NodeLifecycleTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Sigterm_stops_the_node_cleanly_and_it_restarts_with_the_same_host_id_and_volumes()
    {
        var device = _dir.File("life.log");
        string hostId, volume, head;
        await using (var node = await NodeProcess.StartAsync("127.0.0.18", device))
        {
            hostId = node.HostId;
            volume = await node.NewDiskAsync("16M");
            (await Tool.QemuIo(node.Nbd(volume), "write -P 3 0 64k", "flush")).AssertOk();
            head = await node.HeadAsync(volume);
            Assert.Equal(0, await node.StopAsync());
            Assert.Contains("stopped", node.Stderr);
        }
        await using var again = await NodeProcess.StartAsync("127.0.0.18", device);
        Assert.Equal(hostId, again.HostId);
        Assert.Equal(head, await again.HeadAsync(volume));
        (await Tool.QemuIo(again.Nbd(volume), "read -P 3 0 64k")).AssertOk();

        var other = await NodeProcess.StartExpectingFailureAsync("127.0.0.19", _dir.File("life2.log"), "--host-id", "xyz");
        Assert.Equal(2, other.Code);
    }
}
