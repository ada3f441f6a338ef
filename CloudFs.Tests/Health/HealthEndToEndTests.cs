// Health with the real executable on three nodes (127.0.20.1-3): a volume whose replica host is stopped is degraded
// (2 of 3 current) in `ls --json`, `status` and /metrics, the stopped replica away with a lag that grows in entries
// and bytes while the primary takes writes; once the host is back, its replica resyncs and the volume is healthy again
// with no lag. The status page (GET /) shows the same in a real headless browser (Debian's chromium).
using System.Text.Json;

namespace CloudFs.Tests.Health;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class HealthEndToEndTests : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.20.1", "127.0.20.2", "127.0.20.3"];
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);
    private readonly ProcessCluster _cluster = new(Addresses, "--size", "512M");
    private NodeProcess?[] Nodes => _cluster.Nodes;

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private static async Task<JsonElement> VolumeAsync(string contact, string id)
    {
        var json = (await Tool.CloudFs("ls", "--json", "--contact", contact)).AssertOk().Out;
        return JsonDocument.Parse(json).RootElement.EnumerateArray().Single(v => v.GetProperty("id").GetString() == id).Clone();
    }

    private static JsonElement ReplicaOf(JsonElement volume, string host) =>
        volume.GetProperty("lag").EnumerateArray().Single(r => r.GetProperty("host").GetString() == host);

    /// <summary>A 3-replica volume with some data, and the index of a node that holds a replica but is neither its primary
    /// nor the first node (the oldest member, where placement runs: stopping it would move placement, which then never
    /// saw the stopped host's head, so its lag would be unknown).</summary>
    private async Task<(string Id, int Primary, int Replica)> VolumeWithDataAsync()
    {
        // A member that joined a moment ago is chosen once it proved its identity: asked again until all three are.
        var id = await Eventually.Value(async () =>
        {
            var r = await Tool.CloudFs("newdisk", "3", "--size", "64M", "--name", "healthvol", "--contact", Addresses[0]);
            return r.Code == 0 ? r.Out.Trim() : r.Err.Contains("host(s) found") ? null : throw new InvalidOperationException(r.ToString());
        }, Wait, "a volume on all three hosts");
        var volume = await Eventually.Value(async () =>
        {
            var v = await VolumeAsync(Addresses[0], id);
            return v.GetProperty("health").GetString() == "healthy" && v.GetProperty("lag").GetArrayLength() == 3 ? (object)v : null;
        }, Wait, "the new volume healthy on all three hosts");
        var primaryHost = ((JsonElement)volume).GetProperty("primary").GetString();
        var primary = Array.FindIndex(Nodes, n => n!.HostId == primaryHost);
        Assert.True(primary >= 0, $"the primary {primaryHost} is none of the nodes");
        (await Tool.QemuIo(Nodes[primary]!.Nbd(id), "write -P 0x11 0 1M")).AssertOk();
        return (id, primary, primary == 1 ? 2 : 1);
    }

    [Fact]
    public async Task A_stopped_replica_host_makes_the_volume_degraded_with_a_growing_lag_and_it_is_healthy_again_after_the_host_returns()
    {
        var (id, primary, replica) = await VolumeWithDataAsync();
        var contact = Addresses[primary];
        var away = Nodes[replica]!.HostId;
        await Nodes[replica]!.StopAsync();

        // Writes the stopped replica misses: its lag grows in entries and in bytes.
        for (var i = 0; i < 8; i++) (await Tool.QemuIo(Nodes[primary]!.Nbd(id), $"write -P 0x{0x20 + i:x2} {i}M 1M")).AssertOk();
        var degraded = (JsonElement)await Eventually.Value(async () =>
        {
            var v = await VolumeAsync(contact, id);
            var r = ReplicaOf(v, away);
            return v.GetProperty("health").GetString() == "degraded" && r.GetProperty("lag_bytes").ValueKind == JsonValueKind.Number
                   && r.GetProperty("lag_bytes").GetInt64() >= 8L << 20 ? (object)v : null;
        }, Wait, "the volume degraded with the stopped replica's lag measured");
        Assert.Equal("degraded (2 of 3 current)", degraded.GetProperty("health_detail").GetString());
        Assert.Equal(2, degraded.GetProperty("current_replicas").GetInt32());
        var awayReplica = ReplicaOf(degraded, away);
        Assert.Equal("away", awayReplica.GetProperty("state").GetString());
        Assert.True(awayReplica.GetProperty("lag_entries").GetInt64() >= 8, awayReplica.ToString());
        Assert.Equal("primary", ReplicaOf(degraded, Nodes[primary]!.HostId).GetProperty("state").GetString());

        // `ls` (the health field), `status` (members and the volume with its detail and lag) and /metrics say the same.
        var line = (await Tool.CloudFs("ls", "--contact", contact)).AssertOk().Out.Split('\n').Single(l => l.StartsWith(id, StringComparison.Ordinal));
        Assert.Equal("degraded", line.Split(' ')[7]);
        var status = (await Tool.CloudFs("status", "--contact", contact)).AssertOk().Out;
        Assert.Contains("volumes: 1 not healthy", status);
        Assert.Contains("health: degraded (2 of 3 current)", status);
        Assert.Matches($"replica {away}: away, lag [0-9]+ entries, [0-9]+ bytes", status);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var metrics = await http.GetStringAsync($"{Nodes[primary]!.HttpBase}/metrics");
        Assert.Contains($"cloudfs_volume_health{{volume=\"{id}\",health=\"degraded\"}} 1", metrics);
        Assert.Contains($"cloudfs_volume_current_replicas{{volume=\"{id}\"}} 2", metrics);
        Assert.Matches($"cloudfs_replica_lag_bytes\\{{volume=\"{id}\",host=\"{away}\"\\}} [1-9][0-9]*", metrics);

        // Back: its follower catches up (resyncing while it does), then every replica is current and nothing lags.
        Nodes[replica] = await _cluster.StartAsync(replica);
        var words = new HashSet<string>();
        var healthy = (JsonElement)await Eventually.Value(async () =>
        {
            var v = await VolumeAsync(contact, id);
            words.Add(v.GetProperty("health_detail").GetString()!);
            // Placement's word (a node lists only its own copies, with no replica's lag, when placement does not answer in time).
            return v.GetProperty("health").GetString() == "healthy" && v.GetProperty("lag").GetArrayLength() == 3 ? (object)v : null;
        }, Wait, "the volume healthy again after the replica host returned");
        Assert.Equal(3, healthy.GetProperty("current_replicas").GetInt32());
        Assert.All(healthy.GetProperty("lag").EnumerateArray(), r => Assert.Equal(0, r.GetProperty("lag_entries").GetInt64()));
        // On its way back the replica may show resyncing, or outdated for a round while its follower's first attempt
        // fails and retries (the host rejoined before placement answers it); never damaged.
        Assert.DoesNotContain(words, w => w.StartsWith("damaged", StringComparison.Ordinal));
        Assert.Contains("volumes: all healthy", (await Tool.CloudFs("status", "--contact", contact)).AssertOk().Out);
        Assert.Equal((await Nodes[primary]!.HeadAsync(id)), await Nodes[replica]!.HeadAsync(id));
    }

    [Fact]
    public async Task The_status_page_in_a_headless_browser_shows_the_volume_degraded_while_a_replica_host_is_stopped()
    {
        var chromium = Tool.Require("chromium");
        var (id, primary, replica) = await VolumeWithDataAsync();
        var away = Nodes[replica]!.HostId;
        await Nodes[replica]!.StopAsync();
        await Eventually.Value(async () => (await VolumeAsync(Addresses[primary], id)).GetProperty("health").GetString() == "degraded" ? "" : null,
            Wait, "the volume degraded");

        var page = $"{Nodes[primary]!.HttpBase}/?refresh=500";
        string[] headless = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", $"--user-data-dir={_cluster.Dir.File("chromium")}",
            "--virtual-time-budget=10000"];
        // The DOM after the page fetched /cluster and /metrics itself (virtual time runs its timers; fetches complete).
        var dom = await Eventually.Value(async () =>
        {
            var r = await Tool.RunAsync(chromium, [.. headless, "--dump-dom", page], TimeSpan.FromSeconds(120));
            return r.Code == 0 && r.Out.Contains($"data-volume=\"{id}\"") ? r.Out : null;
        }, Wait, "chromium's DOM of the status page listing the volume");
        Assert.Matches($"<tr data-volume=\"{id}\" data-health=\"degraded\">", dom);
        Assert.Contains("degraded (2 of 3 current)", dom);
        Assert.Contains($"data-host=\"{away}\" data-state=\"away\"", dom);
        Assert.Contains("healthvol", dom);
        foreach (var a in Addresses.Where((_, i) => i != replica)) Assert.Contains($"data-address=\"akka.tcp://cloudfs@{a}:4053\"", dom);
        Assert.Contains("<div id=\"error\"></div>", dom);

        // And a screenshot, kept in the test's directory (and the last one in the system's temp directory).
        var shot = _cluster.Dir.File("status-page.png");
        (await Tool.RunAsync(chromium, [.. headless, "--hide-scrollbars", "--window-size=1400,900", $"--screenshot={shot}", page],
            TimeSpan.FromSeconds(120))).AssertOk();
        var png = await File.ReadAllBytesAsync(shot);
        Assert.True(png.Length > 10_000 && png.AsSpan(1, 3).SequenceEqual("PNG"u8), $"not a screenshot: {png.Length} bytes at {shot}");
        File.Copy(shot, Path.Combine(Path.GetTempPath(), "cloudfs-status-page-degraded.png"), overwrite: true);
    }
}
