// The HTTP API with --tls: HTTPS with the node's certificate; volume data, streams, the log and anything else that is
// not a read-only view need a client certificate of the cluster (401 without, 403 from another authority); and the
// body limits (size, rate) that hold for every request but POST /log's.
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;
using CloudFs.Host.Http;
using CloudFs.Host.Metrics;
using CloudFs.Tests.Doubles;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Host;

public sealed class HttpsApiTests : IAsyncLifetime
{
    private readonly TestAuthority _ca = new();
    private readonly MemoryVolumeGateway _gateway = new();
    private readonly FakeVersionLog _log = new();
    private ClusterTls _node = null!;
    private ClusterTls _admin = null!;
    private HttpApi _api = null!;
    private Id160 _volume;

    public async Task InitializeAsync()
    {
        _node = _ca.LoadNode("node", null, "127.0.0.1");
        _admin = ClusterTls.Load(_ca.Operator("admin"));
        _volume = _gateway.AddVolume(1 << 20);
        _api = await StartAsync(new HttpApiOptions(new IPEndPoint(IPAddress.Loopback, 0), CloudFsSettings.Default.Http) { Tls = _node });
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        _admin.Dispose();
        _node.Dispose();
        _ca.Dispose();
    }

    private async Task<HttpApi> StartAsync(HttpApiOptions options)
    {
        var metrics = new HostMetrics(Prometheus.Metrics.NewCustomRegistry());
        metrics.ObserveLog(() => _log.Usage, () => 1);
        var api = new HttpApi(options, new MeteredVolumeGateway(_gateway, metrics), _log, new FakeClusterView(), metrics, null);
        await api.StartAsync(CancellationToken.None);
        return api;
    }

    /// <summary>An HTTPS client that trusts the cluster's nodes and presents <paramref name="identity"/>'s certificate (none when null).</summary>
    private HttpClient Client(ClusterTls? identity)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, c, _, _) => _admin.TryValidateServer(c, null, out _);
        if (identity is not null) handler.SslOptions.ClientCertificates = [identity.ClientCertificate];
        return new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{_api.BoundEndPoint.Port}/") };
    }

    private HttpRequestMessage Put(byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"volumes/{_volume}") { Content = new ByteArrayContent(body) };
        request.Content.Headers.TryAddWithoutValidation("Content-Range", $"bytes 0-{body.Length - 1}/*");
        return request;
    }

    private IEnumerable<HttpRequestMessage> GuardedRequests()
    {
        yield return Put(new byte[4096]);
        yield return new HttpRequestMessage(HttpMethod.Get, $"volumes/{_volume}");
        yield return new HttpRequestMessage(HttpMethod.Get, $"stream?{_log.Known}");
        yield return new HttpRequestMessage(HttpMethod.Post, "log") { Content = new ByteArrayContent("ENTRY001"u8.ToArray()) };
        yield return new HttpRequestMessage(HttpMethod.Post, "volumes") { Content = new StringContent("{}") };
        yield return new HttpRequestMessage(HttpMethod.Delete, $"volumes/{_volume}");
    }

    [Fact]
    public async Task Without_a_client_certificate_volume_data_streams_and_the_log_answer_401_and_nothing_changes()
    {
        _gateway.Data(_volume)[0] = 0x77;
        using var anonymous = Client(null);
        foreach (var request in GuardedRequests())
        {
            using var response = await anonymous.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{request.Method} {request.RequestUri}: {response.StatusCode}");
            var reason = await response.Content.ReadAsStringAsync();
            Assert.Contains("needs a client certificate of this cluster's authority", reason);
            Assert.Single(reason.TrimEnd('\n').Split('\n'));
        }
        Assert.Equal(0x77, _gateway.Data(_volume)[0]);
        Assert.Equal(0, _gateway.Writes);
        Assert.Empty(_log.Applied);
    }

    [Fact]
    public async Task A_certificate_of_another_authority_answers_403_with_the_reason()
    {
        using var foreignAuthority = new TestAuthority();
        using var mallory = ClusterTls.Load(foreignAuthority.Operator("mallory"));
        using var client = Client(mallory);
        foreach (var request in GuardedRequests())
        {
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Contains("'CN=cloudfs operator mallory' is not one of this cluster's", await response.Content.ReadAsStringAsync());
        }
        Assert.Equal(0, _gateway.Writes);
    }

    [Fact]
    public async Task An_operator_or_a_node_certificate_writes_and_reads_a_volume()
    {
        var data = Enumerable.Range(0, 8192).Select(i => (byte)(i * 31)).ToArray();
        using (var admin = Client(_admin))
        {
            using var put = await admin.SendAsync(Put(data));
            Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        }
        Assert.Equal(data, _gateway.Peek(_volume, 0, data.Length));

        using var node = _ca.LoadNode("peer");
        using var peer = Client(node);
        var read = new HttpRequestMessage(HttpMethod.Get, $"volumes/{_volume}");
        read.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(0, data.Length - 1);
        using var got = await peer.SendAsync(read);
        Assert.Equal(HttpStatusCode.PartialContent, got.StatusCode);
        Assert.Equal(data, await got.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task The_read_only_views_stay_open_without_a_certificate()
    {
        using var anonymous = Client(null);
        foreach (var path in new[] { "heads", "metrics", "cluster" })
        {
            using var response = await anonymous.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET /{path}: {response.StatusCode}");
        }
        Assert.True(ClientCertificateGate.IsOpen(new Microsoft.AspNetCore.Http.DefaultHttpContext { Request = { Method = "GET", Path = "/health" } }.Request));
        Assert.False(ClientCertificateGate.IsOpen(new Microsoft.AspNetCore.Http.DefaultHttpContext { Request = { Method = "POST", Path = "/heads" } }.Request));
    }

    [Fact]
    public async Task Plain_HTTP_to_an_HTTPS_node_serves_nothing()
    {
        using var plain = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_api.BoundEndPoint.Port}/") };
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => plain.GetAsync("heads"));
    }

    [Fact]
    public async Task A_request_body_slower_than_the_minimum_rate_ends_its_request()
    {
        await using var api = await StartAsync(new HttpApiOptions(new IPEndPoint(IPAddress.Loopback, 0), CloudFsSettings.Default.Http)
        {
            MinBodyRate = 1000,
            MinBodyRateGrace = TimeSpan.FromSeconds(2),
        });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, api.BoundEndPoint.Port);
        var head = $"PUT /volumes/{_volume} HTTP/1.1\r\nHost: x\r\nContent-Range: bytes 0-1048575/*\r\nContent-Length: 1048576\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(head + new string('x', 100)));

        // Nothing more comes: the server answers 408 (or just closes), and writes nothing.
        var answer = new StringBuilder();
        var buffer = new byte[4096];
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n;
        try
        {
            while ((n = await socket.ReceiveAsync(buffer, patience.Token)) > 0) answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        catch (OperationCanceledException)
        {
            Assert.Fail("the server still waits for a body that stopped arriving 30 s ago");
        }
        Assert.True(answer.Length == 0 || answer.ToString().StartsWith("HTTP/1.1 408", StringComparison.Ordinal), answer.ToString());
        Assert.Equal(0, _gateway.Writes);
    }

    [Fact]
    public async Task POST_log_takes_a_stream_longer_than_the_body_limit_that_other_requests_keep()
    {
        await using var api = await StartAsync(new HttpApiOptions(new IPEndPoint(IPAddress.Loopback, 0), CloudFsSettings.Default.Http) { MaxPutBytes = 4096 });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{api.BoundEndPoint.Port}/") };
        var stream = Enumerable.Range(0, 2048).SelectMany(i => Encoding.ASCII.GetBytes($"ENTRY{i % 1000:000}")).ToArray(); // 16 KiB

        using var applied = await http.PostAsync("log", new ByteArrayContent(stream));
        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        Assert.Equal(2048, _log.Applied.Count);

        var put = new HttpRequestMessage(HttpMethod.Put, $"volumes/{_volume}") { Content = new ByteArrayContent(new byte[8192]) };
        put.Content.Headers.TryAddWithoutValidation("Content-Range", "bytes 0-8191/*");
        using var refused = await http.SendAsync(put);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
    }
}
