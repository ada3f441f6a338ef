// The management commands over the node's HTTP server with three real nodes on 127.0.17.1-3: every node answers for the
// cluster, a node serves a volume it does not hold (one lookup), POST /volumes creates, `cloudfs status` names a volume
// degraded while a replica host is stopped, and a dead contact or an unknown host fails with one sentence.
using System.Net;
using System.Text;
using System.Text.Json;

namespace CloudFs.Tests.EndToEnd;

public sealed class ThreeHttpNodes : IAsyncLifetime
{
    public static readonly string[] Addresses = ["127.0.17.1", "127.0.17.2", "127.0.17.3"];
    public static readonly string Seeds = string.Join(",", Addresses);
    internal TempDir Dir { get; } = new();
    internal NodeProcess?[] Nodes { get; } = new NodeProcess?[3];

    public async Task InitializeAsync()
    {
        await ProcessCluster.StartAllAsync(Nodes, StartAsync);
        await ProcessCluster.WaitForMembersAsync(Nodes, Addresses);
    }

    internal Task<NodeProcess> StartAsync(int i) => NodeProcess.StartAsync(Addresses[i], Dir.File($"node{i}.log"), "--seeds", Seeds, "--size", "512M");

    public async Task DisposeAsync()
    {
        await Task.WhenAll(Nodes.OfType<NodeProcess>().Select(n => n.DisposeAsync().AsTask()));
        Dir.Dispose();
    }
}

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class HttpManagementEndToEndTests(ThreeHttpNodes cluster) : IClassFixture<ThreeHttpNodes>
{
    private static readonly string[] Addresses = ThreeHttpNodes.Addresses;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);

    private static async Task<JsonElement[]> Ls(string contact) =>
        JsonDocument.Parse((await Tool.CloudFs("ls", "--json", "--contact", contact)).AssertOk().Out).RootElement.EnumerateArray().ToArray();

    [Fact]
    public async Task Every_node_answers_ls_info_status_and_cluster_show_for_the_whole_cluster()
    {
        var volume = (await Tool.CloudFs("newdisk", "3", "--size", "32M", "--mode", "sync", "--contact", Addresses[0])).AssertOk().Out.Trim();
        foreach (var contact in Addresses)
        {
            var listed = Assert.Single(await Ls(contact), v => v.GetProperty("id").GetString() == volume);
            Assert.Equal(3, listed.GetProperty("replicas").GetArrayLength());
            Assert.Equal(volume, (await Tool.CloudFs("info", volume, "--contact", contact)).AssertOk().Out.Trim());
            var show = (await Tool.CloudFs("cluster", "show", "--contact", contact)).AssertOk().Out;
            Assert.Contains("Count: 3", show);
            using var members = JsonDocument.Parse((await Tool.CloudFs("cluster", "show", "--json", "--contact", contact)).AssertOk().Out);
            Assert.Equal(cluster.Nodes.Select(n => n!.HostId).Order(), members.RootElement.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("host_id").GetString()).Order());
        }
        // The former form (the akka port) and the environment name the same node's HTTP server.
        Assert.Contains(volume, (await Tool.CloudFs("ls", "--contact", Addresses[1] + ":4053")).AssertOk().Out);
        var status = (await Tool.Bash($"CLOUDFS_CONTACT={Addresses[2]} {Repo.CloudFsScript} status")).AssertOk().Out;
        Assert.StartsWith("members: 3 (3 up, 0 unreachable)", status);
    }

    [Fact]
    public async Task A_node_serves_a_volume_it_does_not_hold_through_its_primary()
    {
        var volume = (await Tool.CloudFs("newdisk", "1", "--size", "16M", "--contact", Addresses[0])).AssertOk().Out.Trim();
        var holder = Assert.Single(await Ls(Addresses[0]), v => v.GetProperty("id").GetString() == volume).GetProperty("primary").GetString();
        var primary = Array.FindIndex(cluster.Nodes, n => n!.HostId == holder);
        (await Tool.QemuIo(cluster.Nodes[primary]!.Nbd(volume), "write -P 0x3c 0 64k", "flush")).AssertOk();
        // Found by one lookup on the nodes that do not hold it (a single-replica volume is read-only there).
        foreach (var other in Enumerable.Range(0, 3).Where(i => i != primary))
        {
            (await Tool.QemuIoReadOnly(cluster.Nodes[other]!.Nbd(volume), "read -P 0x3c 0 64k")).AssertOk();
            using var http = new HttpClient { Timeout = Timeout };
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{Addresses[other]}:8090/volumes/{volume}");
            request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(0, 511);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.All(await response.Content.ReadAsByteArrayAsync(), b => Assert.Equal(0x3c, b));
        }
    }

    [Fact]
    public async Task Post_volumes_creates_a_volume_without_starting_a_process_and_refuses_bad_input()
    {
        using var http = new HttpClient { Timeout = Timeout };
        using var created = await http.PostAsync($"http://{Addresses[1]}:8090/volumes",
            new StringContent("""{"replicas": 2, "size": "32M", "mode": "sync"}""", Encoding.UTF8, "application/json"));
        var body = await created.Content.ReadAsStringAsync();
        Assert.True(created.StatusCode == HttpStatusCode.Created, body);
        using var json = JsonDocument.Parse(body);
        var id = json.RootElement.GetProperty("id").GetString()!;
        Assert.Equal((32L << 20, "sync", 2), (json.RootElement.GetProperty("size").GetInt64(), json.RootElement.GetProperty("mode").GetString(),
            json.RootElement.GetProperty("replicas").GetArrayLength()));
        Assert.Contains(await Ls(Addresses[2]), v => v.GetProperty("id").GetString() == id);

        var before = (await Ls(Addresses[0])).Length;
        using var refused = await http.PostAsync($"http://{Addresses[1]}:8090/volumes", new StringContent("""{"replicas": 4}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("only 3 host(s) found", await refused.Content.ReadAsStringAsync());
        Assert.Equal(before, (await Ls(Addresses[0])).Length);
    }

    [Fact]
    public async Task A_dead_contact_or_an_unknown_host_fails_with_one_sentence_naming_it()
    {
        foreach (var (contact, why) in new[]
                 {
                     ("127.0.17.250", "cannot reach the node at 127.0.17.250:8090 (connection refused)"),
                     ("nosuchhost.invalid", "cannot reach the node at nosuchhost.invalid:8090 (no such host)"),
                     // A host name is resolved and connected to (nothing listens on port 1).
                     ("localhost:1", "cannot reach the node at localhost:1 (connection refused)"),
                 })
        {
            var r = await Tool.CloudFs("ls", "--contact", contact);
            Assert.Equal(1, r.Code);
            Assert.Equal("", r.Out);
            var line = Assert.Single(r.Err.Trim().Split('\n'));
            Assert.StartsWith("cloudfs: " + why, line);
        }
        // Several contacts: the first that answers.
        Assert.Contains("Count: 3", (await Tool.CloudFs("cluster", "show", "--contact", "127.0.17.250," + Addresses[0])).AssertOk().Out);
    }

    [Fact]
    public async Task Status_names_a_volume_degraded_while_a_replica_host_is_stopped_and_healthy_again_after()
    {
        var volume = (await Tool.CloudFs("newdisk", "3", "--size", "16M", "--mode", "sync", "--contact", Addresses[0])).AssertOk().Out.Trim();
        Assert.DoesNotContain(volume, (await Tool.CloudFs("status", "--contact", Addresses[0])).AssertOk().Out);
        await cluster.Nodes[2]!.StopAsync();
        await cluster.Nodes[2]!.DisposeAsync();
        cluster.Nodes[2] = null;
        try
        {
            var status = await Eventually.Value(async () =>
            {
                var json = JsonDocument.Parse((await Tool.CloudFs("status", "--json", "--contact", Addresses[0])).AssertOk().Out);
                return json.RootElement.GetProperty("volumes").EnumerateArray().Any(v => v.GetProperty("id").GetString() == volume) ? json : null;
            }, Timeout, $"status lists volume {volume} while a replica host is stopped");
            using (status)
            {
                var listed = status.RootElement.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("id").GetString() == volume);
                Assert.Equal("degraded", listed.GetProperty("health").GetString());
            }
            Assert.Contains($"{volume} ", (await Tool.CloudFs("status", "--contact", Addresses[1])).AssertOk().Out);
        }
        finally
        {
            cluster.Nodes[2] = await cluster.StartAsync(2);
        }
        await Eventually.Value(async () =>
            (await Tool.CloudFs("status", "--contact", Addresses[0])).Out.Contains("volumes: all healthy") ? "" : null, Timeout, "every volume healthy again");
    }
}
