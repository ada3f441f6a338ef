// Three real nodes on 127.0.0.31-33 (default ports, seeds pointing at each other): `cloudfs newdisk 3`, writes with
// qemu-io through one node, the same head on all three; kill -9 of the host that runs both the placement singleton (the
// oldest member) and the volume's primary → writable through a survivor with nothing acknowledged lost; the old primary
// restarts and ends on the same head; then the same with a replica killed instead. How long each failover takes (the
// goal: 10 s) is measured by bench/cluster_bench.py, not asserted here.
using System.Text.Json;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class ClusterFailoverEndToEndTests : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.0.31", "127.0.0.32", "127.0.0.33"];
    private readonly ProcessCluster _cluster = new(Addresses, "--size", "512M");
    private NodeProcess?[] Nodes => _cluster.Nodes;

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private async Task HeadsAgree(string volume, IEnumerable<int> nodes)
    {
        string[] heads = [];
        await Eventually.Until(async () =>
        {
            heads = await Task.WhenAll(nodes.Select(i => Nodes[i]!.HeadAsync(volume)));
            return heads.Distinct().Count() == 1 && !heads[0].StartsWith(volume + ":" + volume, StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30), $"the same head of {volume} on nodes {string.Join(",", nodes)}");
    }

    private static async Task<string> PrimaryOf(string volume, string contact)
    {
        var json = (await Tool.CloudFs("ls", "--json", "--contact", contact)).AssertOk().Out;
        foreach (var v in JsonDocument.Parse(json).RootElement.EnumerateArray())
            if (v.GetProperty("id").GetString() == volume) return v.GetProperty("primary").GetString()!;
        Assert.Fail($"volume {volume} is not in `cloudfs ls`:\n{json}");
        return "";
    }

    private int IndexOf(string hostId) => Array.FindIndex(Nodes, n => n?.HostId == hostId);

    /// <summary>A qemu-io write through node <paramref name="i"/>, retried until it succeeds.</summary>
    private async Task WriteUntilAccepted(int i, string volume, string command, TimeSpan timeout)
    {
        ToolResult last = null!;
        await Eventually.Until(async () => (last = await Tool.QemuIo(Nodes[i]!.Nbd(volume), command)).Code == 0, timeout,
            () => $"`{command}` through {Addresses[i]} (last: {last?.Err})\n{_cluster.Output()}");
    }

    /// <summary>Creates sync volumes of 3 replicas until one has its primary on node <paramref name="primary"/> (the
    /// primary is the host nearest a random key, so each try has a one in three chance; 30 tries all miss with
    /// probability 5e-6).</summary>
    private async Task<string> NewdiskWithPrimaryOn(int primary)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var created = (await Tool.CloudFs("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", Addresses[0])).AssertOk();
            var volume = created.Out.Trim();
            Assert.Matches("^[0-9a-f]{40}$", volume);
            foreach (var n in Nodes) Assert.Contains(n!.HostId, created.Err);
            if (IndexOf(await PrimaryOf(volume, Addresses[1])) == primary) return volume;
        }
        Assert.Fail($"no volume of 30 got its primary on {Addresses[primary]}");
        return "";
    }

    [Fact]
    public async Task Newdisk_3_survives_kill_9_of_the_primary_and_singleton_host_and_then_of_a_replica()
    {
        // Node 0 started first, so it is the oldest member and runs the placement singleton (and the shard coordinator):
        // killing it makes both move before the volume can fail over, the slowest case of a primary's death.
        const string placementStarted = "placement service started on this member";
        await Eventually.Until(() => Nodes[0]!.Stderr.Contains(placementStarted), TimeSpan.FromSeconds(30), $"the placement singleton on {Addresses[0]}");
        var volume = await NewdiskWithPrimaryOn(0);

        // Written through the second node, whichever is primary; acknowledged means on a majority (sync).
        (await Tool.QemuIo(Nodes[1]!.Nbd(volume), "write -P 0x5a 0 1M", "write -P 0x6b 4M 512k", "flush")).AssertOk();
        await HeadsAgree(volume, [0, 1, 2]);

        // kill -9 the primary, which also runs the placement singleton.
        const int primary = 0;
        var survivors = new[] { 1, 2 };
        await _cluster.KillAsync(primary);
        await WriteUntilAccepted(survivors[0], volume, "write -P 0x7c 8M 64k", TimeSpan.FromSeconds(60));
        Assert.Contains(placementStarted, Nodes[survivors[0]]!.Stderr + Nodes[survivors[1]]!.Stderr);
        (await Tool.QemuIoReadOnly(Nodes[survivors[1]]!.Nbd(volume), "read -P 0x5a 0 1M", "read -P 0x6b 4M 512k", "read -P 0x7c 8M 64k")).AssertOk();
        await HeadsAgree(volume, survivors);

        // The old primary comes back: it follows the new primary and ends on the same head.
        Nodes[primary] = await _cluster.StartAsync(primary);
        await HeadsAgree(volume, [0, 1, 2]);
        (await Tool.QemuIoReadOnly(Nodes[primary]!.Nbd(volume), "read -P 0x5a 0 1M", "read -P 0x7c 8M 64k")).AssertOk();

        // Now a replica dies instead: writes go on (a majority remains), and it catches up when it returns.
        var newPrimary = IndexOf(await PrimaryOf(volume, Addresses[survivors[0]]));
        var replica = Enumerable.Range(0, 3).First(i => i != newPrimary);
        await _cluster.KillAsync(replica);
        await WriteUntilAccepted(newPrimary, volume, "write -P 0x3d 12M 256k", TimeSpan.FromSeconds(60));
        Nodes[replica] = await _cluster.StartAsync(replica);
        await HeadsAgree(volume, [0, 1, 2]);
        (await Tool.QemuIoReadOnly(Nodes[replica]!.Nbd(volume), "read -P 0x5a 0 1M", "read -P 0x7c 8M 64k", "read -P 0x3d 12M 256k")).AssertOk();

        // HTTP: a PUT to a node that is not the primary is redirected to the primary's node (SPEC.md).
        var notPrimary = Enumerable.Range(0, 3).First(i => i != newPrimary);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };
        using var put = new HttpRequestMessage(HttpMethod.Put, $"{Nodes[notPrimary]!.HttpBase}/volumes/{volume}") { Content = new ByteArrayContent(new byte[512]) };
        put.Content.Headers.ContentRange = new System.Net.Http.Headers.ContentRangeHeaderValue(0, 511, 64 << 20);
        using var redirected = await http.SendAsync(put);
        Assert.Equal(System.Net.HttpStatusCode.TemporaryRedirect, redirected.StatusCode);
        Assert.StartsWith(Nodes[newPrimary]!.HttpBase, redirected.Headers.Location!.ToString());
    }
}
