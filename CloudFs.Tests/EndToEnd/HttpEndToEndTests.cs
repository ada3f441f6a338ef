// The HTTP API of a real node: byte ranges written and read back, malformed requests answered, the node still serving.
using System.Net;
using System.Net.Http.Headers;
using CloudFs.Tests.Support;

namespace CloudFs.Tests.EndToEnd;

public sealed class HttpNode() : OneNode("127.0.0.15");

public sealed class HttpEndToEndTests(HttpNode fixture) : IClassFixture<HttpNode>, IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };
    private NodeProcess Node => fixture.Node;

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Put_with_content_range_then_get_with_range_returns_the_bytes_and_nbd_sees_them()
    {
        var volume = await Node.NewDiskAsync("16M");
        var data = Enumerable.Range(0, 8192).Select(i => (byte)0x5a).ToArray();
        using var put = new HttpRequestMessage(HttpMethod.Put, $"{Node.HttpBase}/volumes/{volume}") { Content = new ByteArrayContent(data) };
        put.Content.Headers.ContentRange = new ContentRangeHeaderValue(65536, 65536 + 8191);
        using (var response = await _http.SendAsync(put)) Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);

        using var get = new HttpRequestMessage(HttpMethod.Get, $"{Node.HttpBase}/volumes/{volume}");
        get.Headers.Range = new RangeHeaderValue(65536 - 100, 65536 + 8191);
        using var got = await _http.SendAsync(get);
        Assert.Equal(HttpStatusCode.PartialContent, got.StatusCode);
        var body = await got.Content.ReadAsByteArrayAsync();
        Assert.Equal([.. new byte[100], .. data], body);
        (await Tool.QemuIo(Node.Nbd(volume), "read -P 0x5a 64k 8k")).AssertOk();
    }

    [Fact]
    public async Task Malformed_requests_get_their_status_and_the_node_keeps_serving()
    {
        var volume = await Node.NewDiskAsync("16M");
        async Task<HttpStatusCode> Send(HttpMethod method, string path, Action<HttpRequestMessage>? setup = null, byte[]? body = null)
        {
            using var request = new HttpRequestMessage(method, $"{Node.HttpBase}{path}");
            if (body is not null) request.Content = new ByteArrayContent(body);
            setup?.Invoke(request);
            using var response = await _http.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, await Send(HttpMethod.Get, $"/volumes/{volume}", r => r.Headers.TryAddWithoutValidation("Range", $"bytes={16 << 20}-")));
        Assert.Equal(HttpStatusCode.BadRequest, await Send(HttpMethod.Get, $"/volumes/{volume}", r => r.Headers.TryAddWithoutValidation("Range", "bytes=9-3")));
        Assert.Equal(HttpStatusCode.NotFound, await Send(HttpMethod.Get, $"/volumes/{new string('0', 40)}", r => r.Headers.TryAddWithoutValidation("Range", "bytes=0-511")));
        Assert.Equal(HttpStatusCode.BadRequest, await Send(HttpMethod.Put, $"/volumes/{volume}", r => r.Content!.Headers.TryAddWithoutValidation("Content-Range", "bytes 1-512/*"), new byte[512]));
        Assert.Equal(HttpStatusCode.NotFound, await Send(HttpMethod.Get, $"/stream?{new string('1', 40)}"));
        var garbage = new byte[100_000];
        new Random(7).NextBytes(garbage);
        var status = await Send(HttpMethod.Post, "/log", body: garbage);
        Assert.True((int)status is >= 400 and < 500, $"garbage to /log answered {status}");

        Assert.Contains($"{volume}:{volume}", await Node.HeadsAsync());
        (await Tool.QemuIo(Node.Nbd(volume), "read -P 0 0 64k")).AssertOk();
    }

    [Fact]
    public async Task Metrics_count_block_io_and_report_log_usage()
    {
        var volume = await Node.NewDiskAsync("16M");
        (await Tool.QemuIo(Node.Nbd(volume), "write -P 1 0 64k", "read -P 1 0 64k", "flush")).AssertOk();
        var text = await _http.GetStringAsync($"{Node.HttpBase}/metrics");
        Assert.Matches(@"cloudfs_writes_total [1-9]", text);
        Assert.Matches(@"cloudfs_reads_total [1-9]", text);
        Assert.Matches(@"cloudfs_log_capacity_bytes [1-9]", text);
        Assert.Contains("cloudfs_write_latency_seconds_bucket", text);
        Assert.Matches(@"cloudfs_gateway_repeats_total [0-9]", text);
        Assert.Matches(@"cloudfs_index_memory_bytes [1-9]", text);
        Assert.Matches(@"cloudfs_placement_follow_commands_total [0-9]", text);
        // Placement's rounds ask this node for its volumes (one round a second by default): counted with the volumes.
        await Eventually.Value(async () =>
        {
            var now = await _http.GetStringAsync($"{Node.HttpBase}/metrics");
            return System.Text.RegularExpressions.Regex.IsMatch(now, @"cloudfs_placement_reports_total [1-9]")
                && System.Text.RegularExpressions.Regex.IsMatch(now, @"cloudfs_placement_reported_volumes_total [1-9]") ? now : null;
        }, TimeSpan.FromSeconds(30), "a placement round counted in /metrics");
    }

    [Fact]
    public async Task Cluster_json_names_this_member_and_its_volumes()
    {
        var volume = await Node.NewDiskAsync("16M");
        var json = await _http.GetStringAsync($"{Node.HttpBase}/cluster");
        Assert.Contains(Node.HostId, json);
        Assert.Contains(volume, json);
    }
}
