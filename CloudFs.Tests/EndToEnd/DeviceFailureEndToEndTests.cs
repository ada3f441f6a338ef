// The issue's scenario with real processes on 127.0.2.1-3: each node's log is on an nbdfuse mount over
// `nbdkit --filter=error`; the primary of a 3-replica sync volume starts failing every write with EIO. Writes through
// the other nodes go on (a healthy replica takes over), nothing acknowledged is lost, the node says so in one ERROR
// line, `cloudfs ls` and /cluster show it, the host stays failed when its disk recovers, and a restart brings it back.
using System.Diagnostics;
using System.Net.Http;
using System.Text.Json;
using Xunit.Abstractions;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class DeviceFailureEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.2.1", "127.0.2.2", "127.0.2.3"];
    private static readonly string Seeds = string.Join(",", Addresses);
    private readonly TempDir _dir = new();
    private readonly FaultyDisk?[] _disks = new FaultyDisk?[3];
    private readonly NodeProcess?[] _nodes = new NodeProcess?[3];

    public async Task InitializeAsync()
    {
        try
        {
            for (var i = 0; i < 3; i++)
            {
                _disks[i] = await FaultyDisk.StartAsync(_dir.File($"disk{i}"), "512M");
                // The key file cannot live next to the device (the mount holds one file): it gets a path of its own.
                await File.WriteAllTextAsync(_dir.File($"node{i}.conf"), $"cloudfs.key-file = \"{_dir.File($"node{i}.keys")}\"\n");
            }
            await ProcessCluster.StartAllAsync(_nodes, StartAsync);
            await ProcessCluster.WaitForMembersAsync(_nodes, Addresses);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private Task<NodeProcess> StartAsync(int i) =>
        NodeProcess.StartAsync(Addresses[i], _disks[i]!.Path, "--seeds", Seeds, "--size", "512M", "--config", _dir.File($"node{i}.conf"));

    public async Task DisposeAsync()
    {
        await ProcessCluster.StopAllAsync(_nodes);
        foreach (var d in _disks) if (d is not null) await d.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary><paramref name="what"/> and what the nodes warned about: what says why a wait failed (a tool that hung,
    /// a failover that did not happen).</summary>
    private string Explain(string what) => what + string.Concat(_nodes.Where(n => n is not null)
        .Select(n => $"\n--- node {n!.Listen} warned:\n{n.Warnings()}"));

    private static async Task<JsonElement> Listed(string volume, string contact)
    {
        var json = (await Tool.CloudFs("ls", "--json", "--contact", contact)).AssertOk().Out;
        foreach (var v in JsonDocument.Parse(json).RootElement.EnumerateArray())
            if (v.GetProperty("id").GetString() == volume) return v.Clone();
        Assert.Fail($"volume {volume} is not in `cloudfs ls`:\n{json}");
        return default;
    }

    private async Task<JsonElement> ClusterMember(int via, string hostId)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var json = await http.GetStringAsync($"{_nodes[via]!.HttpBase}/cluster");
        foreach (var m in JsonDocument.Parse(json).RootElement.GetProperty("members").EnumerateArray())
            if (m.GetProperty("hostId").GetString() == hostId) return m.Clone();
        Assert.Fail($"host {hostId} is not a member in /cluster:\n{json}");
        return default;
    }

    private int IndexOf(string hostId) => Array.FindIndex(_nodes, n => n?.HostId == hostId);

    private async Task HeadsAgree(string volume)
    {
        string[] heads = [];
        await Eventually.Until(async () =>
        {
            heads = await Task.WhenAll(_nodes.Select(n => n!.HeadAsync(volume)));
            return heads.Distinct().Count() == 1;
        }, TimeSpan.FromSeconds(60), () => Explain($"the same head of {volume} on all three nodes (last: {string.Join(" ", heads)})"));
    }

    [Fact]
    public async Task When_the_primarys_disk_fails_writes_a_replica_takes_over_and_writes_through_any_node_go_on()
    {
        var volume = (await Tool.CloudFs("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", Addresses[0])).AssertOk().Out.Trim();
        var failed = IndexOf((await Listed(volume, Addresses[0])).GetProperty("primary").GetString()!);
        Assert.InRange(failed, 0, 2);
        var others = Enumerable.Range(0, 3).Where(i => i != failed).ToArray();
        (await Tool.QemuIo(_nodes[others[0]]!.Nbd(volume), "write -P 0x5a 0 1M")).AssertOk();

        _disks[failed]!.FailWrites();
        // Through another node: the first attempts meet the failed primary; the write is then appended by the new one.
        var clock = Stopwatch.StartNew();
        var attempts = 0;
        ToolResult last = null!;
        await Eventually.Until(async () => { attempts++; return (last = await Tool.QemuIo(_nodes[others[1]]!.Nbd(volume), "write -P 0x66 1M 1M")).Code == 0; },
            TimeSpan.FromSeconds(60), () => Explain($"a write through {Addresses[others[1]]} after the primary's disk failed (last: {last?.Err})"));
        output.WriteLine($"a 1 MiB write through another node was acknowledged {clock.Elapsed.TotalSeconds:0.0} s after the disk failed ({attempts} qemu-io run(s))");

        var listed = await Listed(volume, Addresses[others[0]]);
        Assert.Contains(IndexOf(listed.GetProperty("primary").GetString()!), others);
        Assert.Equal("degraded", listed.GetProperty("health").GetString());
        var member = await ClusterMember(others[0], _nodes[failed]!.HostId);
        Assert.Equal("failed", member.GetProperty("device").GetString());
        Assert.Contains("errno 5", member.GetProperty("deviceError").GetString());
        // One ERROR line on the failed node names the device and the errno.
        var errorLines = _nodes[failed]!.Stderr.Split('\n').Where(l => l.Contains(" ERROR [", StringComparison.Ordinal) && l.Contains(_disks[failed]!.Path)).ToArray();
        var line = Assert.Single(errorLines);
        Assert.Contains("errno 5", line);
        // Its probes say so, with the reason; the others stay healthy and ready.
        var health = await Tool.RunAsync("curl", "-s", "-w", "\n%{http_code}", $"{_nodes[failed]!.HttpBase}/health");
        Assert.EndsWith("\n503", health.Out.TrimEnd());
        Assert.Contains("the log device failed", health.Out);
        Assert.EndsWith("\n503", (await Tool.RunAsync("curl", "-s", "-w", "\n%{http_code}", $"{_nodes[failed]!.HttpBase}/ready")).Out.TrimEnd());
        Assert.Equal("ok\n\n200", (await Tool.RunAsync("curl", "-s", "-w", "\n%{http_code}", $"{_nodes[others[0]]!.HttpBase}/ready")).Out.TrimEnd());

        // Everything acknowledged is there, read through the failed node too (it serves the volume from the new primary).
        (await Tool.QemuIo(_nodes[failed]!.Nbd(volume), "read -P 0x5a 0 1M", "read -P 0x66 1M 1M")).AssertOk();

        // The disk recovers; the host does not come back by itself.
        _disks[failed]!.Heal();
        (await Tool.QemuIo(_nodes[failed]!.Nbd(volume), "write -P 0x77 2M 64k")).AssertOk();
        Assert.Equal("failed", (await ClusterMember(others[1], _nodes[failed]!.HostId)).GetProperty("device").GetString());
        Assert.Equal("degraded", (await Listed(volume, Addresses[others[1]])).GetProperty("health").GetString());

        // Restarted on its (now good) disk, it catches up like any returning replica and the volume is healthy again.
        await _nodes[failed]!.StopAsync();
        await _nodes[failed]!.DisposeAsync();
        _nodes[failed] = await StartAsync(failed);
        await HeadsAgree(volume);
        await Eventually.Until(async () => (await Listed(volume, Addresses[others[0]])).GetProperty("health").GetString() == "healthy",
            TimeSpan.FromSeconds(60), () => Explain("the volume healthy after the restart"));
        Assert.Equal("ok", (await ClusterMember(others[0], _nodes[failed]!.HostId)).GetProperty("device").GetString());
        (await Tool.QemuIoReadOnly(_nodes[failed]!.Nbd(volume), "read -P 0x5a 0 1M", "read -P 0x66 1M 1M", "read -P 0x77 2M 64k")).AssertOk();
    }
}
