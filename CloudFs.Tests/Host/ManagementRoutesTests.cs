// The management API on the HTTP server over a fake cluster view: creation (POST /volumes), paged listing, info,
// status, and the refusals, each one management message per route.
using System.Net;
using System.Text;
using System.Text.Json;
using CloudFs.Actors.Management;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;
using CloudFs.Host.Http;
using CloudFs.Host.Metrics;
using CloudFs.Tests.Doubles;

namespace CloudFs.Tests.Host;

public sealed class ManagementRoutesTests : IAsyncLifetime
{
    private static readonly string HostA = new('a', 40);
    private readonly FakeClusterView _cluster = new();
    private HttpApi _api = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var metrics = new HostMetrics(Prometheus.Metrics.NewCustomRegistry());
        _api = new HttpApi(new HttpApiOptions(new IPEndPoint(IPAddress.Loopback, 0), CloudFsSettings.Default.Http),
            new MeteredVolumeGateway(new MemoryVolumeGateway(), metrics), new FakeVersionLog(), _cluster, metrics, null);
        await _api.StartAsync(CancellationToken.None);
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_api.BoundEndPoint.Port}/") };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _api.DisposeAsync();
    }

    private static VolumeSummary Summary(Id160 id, string health = VolumeHealth.Healthy) =>
        new(id.ToString(), 8L << 30, VolumeMode.Async, HostA, [HostA], id.ToString(), Health: health);

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private T[] Asked<T>() { lock (_cluster.Asked) return _cluster.Asked.OfType<T>().ToArray(); }

    [Fact]
    public async Task Post_volumes_with_no_body_creates_three_replicas_of_8G_async_and_answers_201_with_the_ls_object_and_its_hosts()
    {
        var id = Id160.Random();
        _cluster.Answer = request =>
        {
            _cluster.Volumes.Add(Summary(id));
            return new VolumeCreated(id.ToString(), [new HostAddress(HostA, "akka.tcp://cloudfs@127.0.0.1:4053")]);
        };
        using var response = await _http.PostAsync("volumes", null);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal($"/volumes/{id}/info", response.Headers.Location!.ToString());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var o = json.RootElement;
        Assert.Equal(["id", "size", "mode", "primary", "replicas", "version", "name", "health", "parent", "health_detail", "current_replicas", "resync_percent", "lag", "protected", "hosts"], o.EnumerateObject().Select(p => p.Name));
        Assert.Equal((id.ToString(), 8L << 30, "async", "healthy"), (o.GetProperty("id").GetString(), o.GetProperty("size").GetInt64(),
            o.GetProperty("mode").GetString(), o.GetProperty("health").GetString()));
        Assert.Equal(HostA, o.GetProperty("hosts")[0].GetProperty("host_id").GetString());
        Assert.Equal(new CreateVolume(3, 8L << 30, VolumeMode.Async), Assert.Single(Asked<CreateVolume>()));
    }

    [Fact]
    public async Task Post_volumes_takes_replicas_size_in_bytes_or_with_a_suffix_and_mode()
    {
        _cluster.Answer = _ => new CommandFailed("only 1 host(s) found");
        using var a = await _http.PostAsync("volumes", Json("""{"replicas": 1, "size": 16777216, "mode": "sync"}"""));
        using var b = await _http.PostAsync("volumes", Json("""{"size": "64M"}"""));
        Assert.Equal([new CreateVolume(1, 16L << 20, VolumeMode.Sync), new CreateVolume(3, 64L << 20, VolumeMode.Async)], Asked<CreateVolume>());
        // The cluster's refusal: its reason, and a status that is not a success.
        Assert.Equal(HttpStatusCode.Conflict, a.StatusCode);
        Assert.Equal("only 1 host(s) found\n", await a.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("""{"replicas": 0}""", "replicas must be at least 1")]
    [InlineData("""{"size": "12Q"}""", "is not a size")]
    [InlineData("""{"size": 1000}""", "multiple of 512")]
    [InlineData("""{"mode": "fast"}""", "'fast' is not a mode")]
    [InlineData("""{"replicas": "x"}""", "is not a volume request")]
    [InlineData("""not json""", "is not a volume request")]
    [InlineData("""{"name": "-web"}""", "starts with a letter or a digit")]
    public async Task Post_volumes_with_a_bad_body_is_400_with_the_reason_and_creates_nothing(string body, string reason)
    {
        using var response = await _http.PostAsync("volumes", Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(reason, await response.Content.ReadAsStringAsync());
        Assert.Empty(Asked<CreateVolume>());
    }

    [Fact]
    public async Task Get_volumes_streams_every_volume_in_id_order_asking_page_by_page()
    {
        _cluster.PageSize = 100;
        var ids = Enumerable.Range(0, 250).Select(_ => Id160.Random()).ToArray();
        foreach (var id in ids) _cluster.Volumes.Add(Summary(id));
        using var json = JsonDocument.Parse(await _http.GetStringAsync("volumes"));
        Assert.Equal(ids.Select(i => i.ToString()).Order(StringComparer.Ordinal), json.RootElement.EnumerateArray().Select(v => v.GetProperty("id").GetString()));
        var pages = Asked<ListVolumePage>();
        Assert.Equal(3, pages.Length);
        Assert.Null(pages[0].After);
        Assert.All(pages, p => Assert.True(p.Limit <= ListVolumePage.MaxLimit));
    }

    [Fact]
    public async Task Status_has_the_members_and_only_the_volumes_that_are_not_healthy()
    {
        var sick = Id160.Random();
        _cluster.Volumes.Add(Summary(Id160.Random()));
        _cluster.Volumes.Add(Summary(sick, VolumeHealth.Degraded));
        using var json = JsonDocument.Parse(await _http.GetStringAsync("status"));
        Assert.Equal("Up", json.RootElement.GetProperty("cluster").GetProperty("members")[0].GetProperty("status").GetString());
        var volume = Assert.Single(json.RootElement.GetProperty("volumes").EnumerateArray());
        Assert.Equal((sick.ToString(), "degraded"), (volume.GetProperty("id").GetString(), volume.GetProperty("health").GetString()));
        Assert.All(Asked<ListVolumePage>(), p => Assert.True(p.UnhealthyOnly));
    }

    [Fact]
    public async Task Info_answers_the_ls_object_and_an_unknown_volume_is_404_and_a_bad_id_400()
    {
        var id = Id160.Random();
        _cluster.Volumes.Add(Summary(id));
        using var json = JsonDocument.Parse(await _http.GetStringAsync($"volumes/{id}/info"));
        Assert.Equal(id.ToString(), json.RootElement.GetProperty("version").GetString());
        using var unknown = await _http.GetAsync($"volumes/{Id160.Random()}/info");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("no volume", await unknown.Content.ReadAsStringAsync());
        using var bad = await _http.GetAsync("volumes/-xyz/info");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.DoesNotContain(Asked<GetVolume>(), g => g.VolumeId == "-xyz");
    }

    [Fact]
    public async Task Post_volumes_passes_the_name_and_info_finds_a_volume_by_its_name()
    {
        var id = Id160.Random();
        _cluster.Answer = _ =>
        {
            _cluster.Volumes.Add(Summary(id) with { Name = "web" });
            return new VolumeCreated(id.ToString(), [new HostAddress(HostA, "akka.tcp://cloudfs@127.0.0.1:4053")]);
        };
        using var created = await _http.PostAsync("volumes", Json("""{"replicas": 1, "name": "web"}"""));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(new CreateVolume(1, 8L << 30, VolumeMode.Async, "web"), Assert.Single(Asked<CreateVolume>()));
        using var json = JsonDocument.Parse(await _http.GetStringAsync("volumes/web/info"));
        Assert.Equal((id.ToString(), "web"), (json.RootElement.GetProperty("id").GetString(), json.RootElement.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Scrub_verify_and_branch_pass_a_volume_name_through_and_a_name_no_volume_has_is_404()
    {
        _cluster.Answer = request => new CommandFailed($"{VolumeResolver.NotFound}named 'db' on this cluster");
        using var scrub = await _http.PostAsync("scrub?volume=db", null);
        using var verify = await _http.PostAsync("volumes/db/verify?deep=1", null);
        using var branch = await _http.PostAsync("versions/db/branch", null);
        Assert.All(new[] { scrub, verify, branch }, r => Assert.Equal(HttpStatusCode.NotFound, r.StatusCode));
        Assert.Equal([new ScrubVolumes("db")], Asked<ScrubVolumes>());
        Assert.Equal([new VerifyVolume("db", true)], Asked<VerifyVolume>());
        Assert.Equal([new BranchVolume("db")], Asked<BranchVolume>());
    }

    [Fact]
    public async Task Delete_asks_for_rm_and_answers_the_volume_404_when_unknown_and_409_when_refused()
    {
        var id = Id160.Random().ToString();
        _cluster.Answer = request => request is RemoveVolume { Volume: var v } && v == id
            ? new VolumeSummary(id, 1 << 20, VolumeMode.Async, null, [], id, "db", TrashedAtUnixMs: 1_700_000_000_000)
            : new CommandFailed($"volume {id} is attached read-write (1 NBD connection(s) at somewhere); detach it first, or rm --force");
        using var removed = await _http.DeleteAsync($"volumes/{id}");
        Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        var body = JsonDocument.Parse(await removed.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(("db", "2023-11-14T22:13:20Z"), (body.GetProperty("name").GetString(), body.GetProperty("trashed").GetString()));

        using var busy = await _http.DeleteAsync("volumes/db?force=0");
        Assert.Equal(HttpStatusCode.Conflict, busy.StatusCode);
        Assert.Contains("attached read-write", await busy.Content.ReadAsStringAsync());
        using var forced = await _http.DeleteAsync("volumes/db?force=1");
        Assert.Equal([new RemoveVolume(id, false), new RemoveVolume("db", false), new RemoveVolume("db", true)], Asked<RemoveVolume>());

        _cluster.Answer = request => new CommandFailed($"{VolumeResolver.NotFound}named 'nothing' on this cluster");
        using var unknown = await _http.DeleteAsync("volumes/nothing");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Trash_routes_list_restore_purge_and_resize_each_ask_one_message()
    {
        var id = Id160.Random();
        var trashed = Summary(id) with { Name = "db", TrashedAtUnixMs = 1_700_000_000_000 };
        _cluster.Answer = request => request switch
        {
            ListTrash => new VolumeList([trashed]),
            RestoreVolume => trashed with { TrashedAtUnixMs = 0 },
            PurgeTrash => new VolumeList([trashed]),
            ResizeVolume r => trashed with { TrashedAtUnixMs = 0, Size = r.SizeBytes },
            _ => new CommandFailed("unexpected"),
        };
        using (var trash = JsonDocument.Parse(await _http.GetStringAsync("trash")))
            Assert.Equal("2023-11-14T22:13:20Z", Assert.Single(trash.RootElement.EnumerateArray()).GetProperty("trashed").GetString());
        using var restored = await _http.PostAsync("trash/db/restore", null);
        using (var json = JsonDocument.Parse(await restored.Content.ReadAsStringAsync()))
            Assert.False(json.RootElement.TryGetProperty("trashed", out _));
        using var purgedOne = await _http.DeleteAsync("trash/db");
        using var purgedAll = await _http.DeleteAsync("trash");
        Assert.Equal($"[\n  \"{id}\"\n]\n", await purgedAll.Content.ReadAsStringAsync());
        using var resized = await _http.PostAsync("volumes/db/resize", Json("""{"size": "16M", "allow_shrink": true}"""));
        Assert.Equal(16L << 20, JsonDocument.Parse(await resized.Content.ReadAsStringAsync()).RootElement.GetProperty("size").GetInt64());
        using var noSize = await _http.PostAsync("volumes/db/resize", Json("{}"));
        Assert.Equal(HttpStatusCode.BadRequest, noSize.StatusCode);
        Assert.Equal([new PurgeTrash("db"), new PurgeTrash(null)], Asked<PurgeTrash>());
        Assert.Equal([new RestoreVolume("db")], Asked<RestoreVolume>());
        Assert.Equal([new ResizeVolume("db", 16L << 20, true)], Asked<ResizeVolume>());
    }

    [Fact]
    public async Task Cluster_members_answers_the_cluster_show_record()
    {
        using var json = JsonDocument.Parse(await _http.GetStringAsync("cluster/members"));
        Assert.Equal(HostA, json.RootElement.GetProperty("members")[0].GetProperty("host_id").GetString());
        Assert.Equal("akka.tcp://cloudfs@127.0.0.1:4053", json.RootElement.GetProperty("leader").GetString());
    }
}
