// The node's HTTP side of health: the status page at / (one self-contained document; behind the client-certificate
// gate with --tls) and the per-volume health and replica lag series in /metrics, which follow the cluster's view
// (a volume that is gone loses its series).
using System.Net;
using System.Net.Http;
using CloudFs.Actors.Management;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;
using CloudFs.Host.Http;
using CloudFs.Host.Metrics;
using CloudFs.Tests.Doubles;
using CloudFs.Tests.Host;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Health;

public sealed class StatusPageAndMetricsTests
{
    private static async Task<HttpApi> StartAsync(FakeClusterView view, ClusterTls? tls = null, HostMetrics? metrics = null)
    {
        metrics ??= new HostMetrics(Prometheus.Metrics.NewCustomRegistry());
        var api = new HttpApi(new HttpApiOptions(new IPEndPoint(IPAddress.Loopback, 0), CloudFsSettings.Default.Http) { Tls = tls },
            new MeteredVolumeGateway(new MemoryVolumeGateway(), metrics), new FakeVersionLog(), view, metrics, null);
        await api.StartAsync(CancellationToken.None);
        return api;
    }

    private static VolumeSummary Degraded(string id) => new(id, 1 << 30, VolumeMode.Sync, "p", ["p", "a", "b"], new string('c', 40), "db",
        VolumeHealth.Degraded, null, 0, [new("p", ReplicaLag.Primary, 0, 0), new("a", ReplicaLag.Current, 0, 0), new("b", ReplicaLag.Away, 42, 193536)], 2);

    [Fact]
    public async Task The_status_page_is_one_html_document_with_nothing_from_elsewhere()
    {
        await using var api = await StartAsync(new FakeClusterView());
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{api.BoundEndPoint.Port}/") };
        using var response = await http.GetAsync("");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("default-src 'none'", response.Headers.GetValues("Content-Security-Policy").Single());
        var html = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.Contains("fetch(\"/cluster\"", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("src=", html);
        Assert.DoesNotContain("://", html.Replace("akka.tcp://", ""));
    }

    [Fact]
    public async Task Metrics_carry_each_volumes_health_and_replica_lag_and_drop_a_volume_that_is_gone()
    {
        var view = new FakeClusterView();
        var id = Id160.Random().ToString();
        view.Volumes.Add(Degraded(id));
        await using var api = await StartAsync(view);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{api.BoundEndPoint.Port}/") };
        var metrics = await http.GetStringAsync("metrics");
        Assert.Contains($"cloudfs_volume_health{{volume=\"{id}\",health=\"degraded\"}} 1", metrics);
        Assert.Contains($"cloudfs_volume_health{{volume=\"{id}\",health=\"healthy\"}} 0", metrics);
        Assert.Contains($"cloudfs_volume_current_replicas{{volume=\"{id}\"}} 2", metrics);
        Assert.Contains($"cloudfs_volume_replicas{{volume=\"{id}\"}} 3", metrics);
        Assert.Contains($"cloudfs_replica_lag_entries{{volume=\"{id}\",host=\"b\"}} 42", metrics);
        Assert.Contains($"cloudfs_replica_lag_bytes{{volume=\"{id}\",host=\"b\"}} 193536", metrics);
        Assert.DoesNotContain($"cloudfs_volume_resync_percent{{volume=\"{id}\"}}", metrics);

        view.Volumes.Clear();
        metrics = await http.GetStringAsync("metrics");
        Assert.DoesNotContain(id, metrics);
    }

    [Fact]
    public async Task A_scrape_leaves_nothing_of_a_volume_behind_in_the_registry()
    {
        var view = new FakeClusterView();
        var id = Id160.Random().ToString();
        view.Volumes.Add(Degraded(id));
        var metrics = new HostMetrics(Prometheus.Metrics.NewCustomRegistry());
        await using var api = await StartAsync(view, metrics: metrics);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{api.BoundEndPoint.Port}/") };
        Assert.Contains($"cloudfs_volume_health{{volume=\"{id}\",health=\"degraded\"}} 1", await http.GetStringAsync("metrics"));

        // The series were written into that response only: the registry (kept for the node's life) holds none of them.
        using var registryText = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(registryText);
        Assert.DoesNotContain(id, System.Text.Encoding.UTF8.GetString(registryText.ToArray()));
    }

    [Fact]
    public async Task A_scrape_the_cluster_stops_answering_midway_carries_no_volume_series_rather_than_some()
    {
        var view = new FakeClusterView { PageSize = 1, PagesBeforeFailure = 1 };
        var (first, second) = (Id160.Random().ToString(), Id160.Random().ToString());
        view.Volumes.Add(Degraded(first));
        view.Volumes.Add(Degraded(second));
        await using var api = await StartAsync(view);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{api.BoundEndPoint.Port}/") };
        var metrics = await http.GetStringAsync("metrics");
        Assert.Contains("cloudfs_writes_total", metrics);
        Assert.DoesNotContain("cloudfs_volume_health{", metrics);
        Assert.DoesNotContain(first, metrics);

        view.PagesBeforeFailure = int.MaxValue;
        metrics = await http.GetStringAsync("metrics");
        Assert.Contains($"cloudfs_volume_replicas{{volume=\"{first}\"}} 3", metrics);
        Assert.Contains($"cloudfs_volume_replicas{{volume=\"{second}\"}} 3", metrics);
    }

    [Fact]
    public async Task With_tls_the_status_page_needs_a_client_certificate_of_the_cluster_and_the_json_it_reads_stays_open()
    {
        using var ca = new TestAuthority();
        using var node = ca.LoadNode("node", null, "127.0.0.1");
        using var admin = ClusterTls.Load(ca.Operator("admin"));
        await using var api = await StartAsync(new FakeClusterView(), node);
        HttpClient Client(ClusterTls? identity)
        {
            var handler = new SocketsHttpHandler();
            handler.SslOptions.RemoteCertificateValidationCallback = (_, c, _, _) => admin.TryValidateServer(c, null, out _);
            if (identity is not null) handler.SslOptions.ClientCertificates = [identity.ClientCertificate];
            return new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{api.BoundEndPoint.Port}/") };
        }
        using var anonymous = Client(null);
        using var refused = await anonymous.GetAsync("");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("needs a client certificate", await refused.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("cluster")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("metrics")).StatusCode);
        using var operatorClient = Client(admin);
        using var page = await operatorClient.GetAsync("");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<title>CloudFS status</title>", await page.Content.ReadAsStringAsync());
    }
}
