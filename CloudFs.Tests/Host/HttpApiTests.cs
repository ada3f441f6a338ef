// The HTTP API over test doubles of the gateway, the log and the cluster: statuses, headers and bytes of every endpoint.
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;
using CloudFs.Host.Http;
using CloudFs.Host.Metrics;
using CloudFs.Tests.Doubles;
using Prometheus;

namespace CloudFs.Tests.Host;

public sealed class HttpApiTests : IAsyncLifetime
{
    private readonly MemoryVolumeGateway _gateway = new();
    private readonly FakeVersionLog _log = new();
    private readonly FakeClusterView _cluster = new();
    private HttpApi _api = null!;
    private HttpClient _http = null!;
    private Id160 _volume;
    private const long Size = 1 << 20;

    public async Task InitializeAsync()
    {
        _volume = _gateway.AddVolume(Size);
        var data = _gateway.Data(_volume);
        for (var i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + i / 512);
        var metrics = new HostMetrics(Prometheus.Metrics.NewCustomRegistry());
        metrics.ObserveLog(() => _log.Usage, () => 1);
        metrics.ObserveCompaction(() => new CompactionStats(Passes: 3, SegmentsCompacted: 5, BytesCopied: 4096, SegmentsFreed: 4,
            AppendsWaited: 7, AppendsRefused: 1, AppendsWaiting: 2, ReserveSegments: 2));
        _api = new HttpApi(new HttpApiOptions(new IPEndPoint(IPAddress.Loopback, 0), CloudFsSettings.Default.Http) { ChunkSize = 4096 },
            new MeteredVolumeGateway(_gateway, metrics), _log, _cluster, metrics, null);
        await _api.StartAsync(CancellationToken.None);
        _http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri($"http://127.0.0.1:{_api.BoundEndPoint.Port}/") };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _api.DisposeAsync();
    }

    private Task<HttpResponseMessage> Get(string path, string? range = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (range is not null) request.Headers.TryAddWithoutValidation("Range", range);
        return _http.SendAsync(request);
    }

    private Task<HttpResponseMessage> Put(Id160 volume, string? contentRange, byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"volumes/{volume}") { Content = new ByteArrayContent(body) };
        if (contentRange is not null) request.Content.Headers.TryAddWithoutValidation("Content-Range", contentRange);
        return _http.SendAsync(request);
    }

    [Fact]
    public async Task Heads_prints_base_and_current_version_per_volume()
    {
        var a = Id160.Random();
        var b = Id160.Random();
        _log.Volumes.Add(new VolumeInfo(a, Size, VolumeMode.Async, a, 1, null, [], true));
        _log.Volumes.Add(new VolumeInfo(b, Size, VolumeMode.Async, a, 9, null, [], true));
        using var response = await Get("heads");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { $"{a}:{a}", $"{b}:{a}" }.Order(), lines.Order());
    }

    [Fact]
    public async Task Health_and_ready_answer_200_ok_while_the_node_serves_and_503_with_the_reason_when_it_cannot()
    {
        foreach (var path in new[] { "health", "ready" })
        {
            using var ok = await Get(path);
            Assert.Equal((HttpStatusCode.OK, "ok\n"), (ok.StatusCode, await ok.Content.ReadAsStringAsync()));
        }

        _cluster.NotReady = "this node is joining in the cluster, not up";
        using (var joining = await Get("ready"))
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "this node is joining in the cluster, not up\n"), (joining.StatusCode, await joining.Content.ReadAsStringAsync()));
        using (var alive = await Get("health")) Assert.Equal(HttpStatusCode.OK, alive.StatusCode);

        _cluster.Unhealthy = "the log device failed: EIO";
        using var failed = await Get("health");
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "the log device failed: EIO\n"), (failed.StatusCode, await failed.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Unaligned_range_get_answers_206_with_exactly_those_bytes()
    {
        using var response = await Get($"volumes/{_volume}", "bytes=1000-9999");
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes 1000-9999/{Size}", response.Content.Headers.GetValues("Content-Range").Single());
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(_gateway.Data(_volume).AsSpan(1000, 9000).ToArray(), body);
    }

    [Fact]
    public async Task Suffix_and_open_ranges_follow_rfc_7233()
    {
        using var suffix = await Get($"volumes/{_volume}", "bytes=-100");
        Assert.Equal(HttpStatusCode.PartialContent, suffix.StatusCode);
        Assert.Equal(_gateway.Data(_volume).AsSpan((int)Size - 100).ToArray(), await suffix.Content.ReadAsByteArrayAsync());
        using var open = await Get($"volumes/{_volume}", $"bytes={Size - 600}-");
        Assert.Equal($"bytes {Size - 600}-{Size - 1}/{Size}", open.Content.Headers.GetValues("Content-Range").Single());
        Assert.Equal(600, (await open.Content.ReadAsByteArrayAsync()).Length);
    }

    [Fact]
    public async Task Get_without_range_returns_the_whole_volume()
    {
        using var response = await Get($"volumes/{_volume}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_gateway.Data(_volume), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Range_past_the_end_is_416_and_the_node_keeps_serving()
    {
        using var response = await Get($"volumes/{_volume}", $"bytes={Size}-{Size + 10}");
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
        Assert.Equal($"bytes */{Size}", response.Content.Headers.GetValues("Content-Range").Single());
        using var again = await Get($"volumes/{_volume}", "bytes=0-511");
        Assert.Equal(HttpStatusCode.PartialContent, again.StatusCode);
    }

    [Theory]
    [InlineData("bytes=abc")]
    [InlineData("bytes=10-5")]
    [InlineData("bytes=0-1,5-6")]
    [InlineData("bytes")]
    public async Task Malformed_range_is_400_with_a_reason(string range)
    {
        using var response = await Get($"volumes/{_volume}", range);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(string.IsNullOrWhiteSpace(await response.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Unknown_volume_is_404_and_a_malformed_id_400()
    {
        using var unknown = await Get($"volumes/{Id160.Random()}", "bytes=0-511");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("not held by this node", await unknown.Content.ReadAsStringAsync());
        using var unnamed = await Get("volumes/xyz", "bytes=0-511");
        Assert.Equal(HttpStatusCode.NotFound, unnamed.StatusCode);
        Assert.Contains("no volume named 'xyz'", await unnamed.Content.ReadAsStringAsync());
        using var bad = await Get("volumes/_xyz");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("is not a volume id (40 hex characters) or name", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Aligned_put_writes_the_bytes_and_flushes()
    {
        var body = Enumerable.Range(0, 8192).Select(i => (byte)(255 - i % 251)).ToArray();
        using var response = await Put(_volume, "bytes 4096-12287/*", body);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(body, _gateway.Data(_volume).AsSpan(4096, 8192).ToArray());
        Assert.Equal(1, _gateway.Flushes);
        using var back = await Get($"volumes/{_volume}", "bytes=4096-12287");
        Assert.Equal(body, await back.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("bytes 100-611/*", 512, HttpStatusCode.BadRequest)]          // misaligned
    [InlineData("bytes 0-1023/*", 512, HttpStatusCode.BadRequest)]           // short body
    [InlineData(null, 512, HttpStatusCode.BadRequest)]                       // no Content-Range
    [InlineData("bytes 1048576-1049087/*", 512, HttpStatusCode.RequestedRangeNotSatisfiable)] // past the end
    [InlineData("bytes 0-511/4096", 512, HttpStatusCode.BadRequest)]         // wrong total
    public async Task Bad_put_is_refused_and_writes_nothing(string? contentRange, int bodyLength, HttpStatusCode expected)
    {
        var before = _gateway.Data(_volume).ToArray();
        using var response = await Put(_volume, contentRange, new byte[bodyLength]);
        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(0, _gateway.Writes);
        Assert.Equal(before, _gateway.Data(_volume));
    }

    [Fact]
    public async Task Put_on_a_replica_redirects_to_the_primary_or_conflicts_when_none_is_known()
    {
        var replica = _gateway.AddVolume(Size, writable: false);
        using var noPrimary = await Put(replica, "bytes 0-511/*", new byte[512]);
        Assert.Equal(HttpStatusCode.Conflict, noPrimary.StatusCode);
        _cluster.Primary = "127.0.0.2:8090";
        using var redirect = await Put(replica, "bytes 0-511/*", new byte[512]);
        Assert.Equal(HttpStatusCode.TemporaryRedirect, redirect.StatusCode);
        Assert.Equal($"http://127.0.0.2:8090/volumes/{replica}", redirect.Headers.Location!.ToString());
        Assert.Equal(0, _gateway.Writes);
    }

    [Fact]
    public async Task Corrupt_stored_data_is_500_for_that_range_only()
    {
        _gateway.Corrupt(_volume, 8192, 512);
        using var bad = await Get($"volumes/{_volume}", "bytes=8192-8703");
        Assert.Equal(HttpStatusCode.InternalServerError, bad.StatusCode);
        Assert.Contains("checksum", await bad.Content.ReadAsStringAsync());
        using var good = await Get($"volumes/{_volume}", "bytes=0-8191");
        Assert.Equal(HttpStatusCode.PartialContent, good.StatusCode);
    }

    [Fact]
    public async Task Stream_answers_bytes_for_a_known_version_404_unknown_410_compacted_400_malformed()
    {
        using var ok = await Get($"stream?{_log.Known}");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("application/octet-stream", ok.Content.Headers.ContentType!.MediaType);
        Assert.Equal(_log.StreamBytes, await ok.Content.ReadAsByteArrayAsync());
        using var unknown = await Get($"stream?{Id160.Random()}");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("not known", await unknown.Content.ReadAsStringAsync());
        using var gone = await Get($"stream?{_log.Compacted}&follow=0");
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
        using var malformed = await Get("stream?nothex");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
    }

    [Fact]
    public async Task Post_log_stops_at_the_bad_entry_with_400_and_keeps_the_ones_before()
    {
        using var content = new ByteArrayContent("ENTRY001ENTRY002BADENTRYENTRY004"u8.ToArray());
        using var response = await _http.PostAsync("log", content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("2 entries before it were applied", await response.Content.ReadAsStringAsync());
        Assert.Equal(["ENTRY001", "ENTRY002"], _log.Applied);
        using var fine = await _http.PostAsync("log", new ByteArrayContent("ENTRY005"u8.ToArray()));
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
        Assert.Contains("applied 1 entries", await fine.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Metrics_report_io_and_log_usage_in_prometheus_text()
    {
        (await Get($"volumes/{_volume}", "bytes=0-4095")).Dispose();
        (await Put(_volume, "bytes 0-511/*", new byte[512])).Dispose();
        using var response = await Get("metrics");
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("cloudfs_reads_total 1", text);
        Assert.Contains("cloudfs_writes_total 1", text);
        Assert.Contains("cloudfs_read_bytes_total 4096", text);
        Assert.Contains("cloudfs_write_latency_seconds_count 1", text);
        Assert.Contains($"cloudfs_log_capacity_bytes {1L << 30}", text);
        Assert.Contains("cloudfs_log_free_segments 61", text);
        Assert.Contains("cloudfs_log_reserve_segments 2", text);
        Assert.Contains("cloudfs_log_space_waiting 2", text);
        Assert.Contains("cloudfs_log_space_waits_total 7", text);
        Assert.Contains("cloudfs_log_space_refused_total 1", text);
        Assert.Contains("cloudfs_compaction_passes_total 3", text);
        Assert.Contains("cloudfs_compaction_segments_total 5", text);
        Assert.Contains("cloudfs_compaction_copied_bytes_total 4096", text);
        Assert.Contains("cloudfs_compaction_freed_segments_total 4", text);
    }

    [Fact]
    public async Task Cluster_answers_json_with_members_and_volumes()
    {
        _cluster.Volumes.Add(new CloudFs.Actors.Management.VolumeSummary(_volume.ToString(), Size, VolumeMode.Sync, null, ["h1"], _volume.ToString()));
        using var response = await Get("cluster");
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("Up", json.RootElement.GetProperty("members")[0].GetProperty("status").GetString());
        var volume = json.RootElement.GetProperty("volumes")[0];
        Assert.Equal(_volume.ToString(), volume.GetProperty("id").GetString());
        Assert.Equal("sync", volume.GetProperty("mode").GetString());
        Assert.Equal(JsonValueKind.Null, volume.GetProperty("primary").ValueKind);
        Assert.Equal("ok", json.RootElement.GetProperty("members")[0].GetProperty("device").GetString());
    }

    [Fact]
    public async Task Cluster_marks_a_host_whose_log_device_failed_and_its_volumes_degraded()
    {
        var host = new string('a', 40);
        _cluster.FailedHosts.Add(new CloudFs.Actors.Management.HostFailure(host, "akka.tcp://cloudfs@127.0.0.1:4053", "fdatasync of /x failed: errno 5 (Input/output error)"));
        _cluster.Volumes.Add(new CloudFs.Actors.Management.VolumeSummary(_volume.ToString(), Size, VolumeMode.Sync, null, [host, "h2", "h3"], _volume.ToString(),
            Health: CloudFs.Actors.Management.VolumeHealth.Degraded));
        using var response = await Get("cluster");
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var member = json.RootElement.GetProperty("members")[0];
        Assert.Equal("failed", member.GetProperty("device").GetString());
        Assert.Contains("errno 5", member.GetProperty("deviceError").GetString());
        Assert.Equal("degraded", json.RootElement.GetProperty("volumes")[0].GetProperty("health").GetString());
    }

    [Fact]
    public async Task Unknown_path_is_404_with_a_hint()
    {
        using var response = await Get("nope");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("/heads", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Changes_streams_the_ranges_written_since_a_version_merged_with_their_bytes_and_the_totals()
    {
        var since = _gateway.MarkVersion(_volume);
        await _gateway.WriteAsync(_volume, 4096, Enumerable.Repeat((byte)0xA1, 512).ToArray(), fua: false);
        // Adjacent to the first (one range), and longer than the API's 4 KiB buffer.
        await _gateway.WriteAsync(_volume, 4608, Enumerable.Repeat((byte)0xB2, 8192).ToArray(), fua: false);
        await _gateway.WriteZeroesAsync(_volume, 65536, 1024, fua: false);
        await _gateway.WriteAsync(_volume, Size - 512, Enumerable.Repeat((byte)0xC3, 512).ToArray(), fua: false);

        using var response = await Get($"volumes/{_volume}/changes?from={since}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType!.MediaType);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var stream = ChangeStream.Parse(bytes);
        // TO: the volume's current version, named by its id (the double's current version is the volume's id).
        Assert.Equal((1u, Size, since, _volume), (stream.FormatVersion, stream.SizeBytes, stream.From, stream.To));
        Assert.Equal([(4096L, 8704L), (65536L, 1024L), (Size - 512, 512L)], stream.Ranges());
        foreach (var record in stream.Records)
            Assert.Equal(_gateway.Peek(_volume, record.Offset, (int)record.Length), record.Data);
        Assert.Equal((3L, 8704L + 1024 + 512), (stream.EndRecords, stream.EndBytes));
        Assert.Equal(60 + 3 * 12 + 8704 + 1024 + 512 + 28, bytes.Length);

        // TO named: the same stream.
        using var named = await Get($"volumes/{_volume}/changes?from={since}&to={_volume}");
        Assert.Equal(bytes, await named.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Changes_refuses_before_any_body_400_malformed_404_unknown_or_of_another_volume_410_compacted()
    {
        var since = _gateway.MarkVersion(_volume);
        var other = _gateway.AddVolume(4096);
        var gone = _gateway.MarkVersion(_volume);
        _gateway.CompactVersion(_volume, gone);
        var cases = new (string Path, HttpStatusCode Status, string Says)[]
        {
            ($"volumes/{_volume}/changes", HttpStatusCode.BadRequest, "?from=VERSION"),
            ($"volumes/{_volume}/changes?from=nothex", HttpStatusCode.BadRequest, "'nothex' is not a version id"),
            ($"volumes/{_volume}/changes?from={since}&to=12ab", HttpStatusCode.BadRequest, "'12ab' is not a version id"),
            ($"volumes/not%20a%20name/changes?from={since}", HttpStatusCode.BadRequest, "is not a volume id"),
            ($"volumes/{_volume}/changes?from={Id160.Random()}", HttpStatusCode.NotFound, "not known"),
            ($"volumes/{Id160.Random()}/changes?from={since}", HttpStatusCode.NotFound, "no volume"),
            ($"volumes/{_volume}/changes?from={since}&to={other}", HttpStatusCode.NotFound, $"not a version of volume {_volume}"),
            ($"volumes/{_volume}/changes?from={gone}", HttpStatusCode.Gone, "no longer available"),
        };
        foreach (var (path, status, says) in cases)
        {
            using var response = await Get(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == status, $"{path}: {(int)response.StatusCode} {body}");
            Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
            Assert.Contains(says, body);
            Assert.DoesNotContain("CFSDIFF", body);
        }
    }
}
