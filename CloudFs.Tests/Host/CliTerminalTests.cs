// What the CLI shows a person at a terminal, against the HTTP API over a fake cluster: `ls` as a table with headers
// and human sizes (plain SPEC lines when piped), and progress lines on stderr for `stream` and `apply` (nothing on
// stderr when it is not a terminal).
using System.Net;
using CloudFs.Actors.Management;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;
using CloudFs.Host.Http;
using CloudFs.Host.Metrics;
using CloudFs.Tests.Doubles;

namespace CloudFs.Tests.Host;

public sealed class CliTerminalTests : IAsyncLifetime
{
    private static readonly string HostA = new('a', 40);
    private static readonly string HostB = new('b', 40);
    private readonly FakeClusterView _cluster = new();
    private readonly FakeVersionLog _log = new();
    private HttpApi _api = null!;
    private string _contact = "";

    public async Task InitializeAsync()
    {
        var metrics = new HostMetrics(Prometheus.Metrics.NewCustomRegistry());
        _api = new HttpApi(new HttpApiOptions(new IPEndPoint(IPAddress.Loopback, 0), CloudFsSettings.Default.Http),
            new MeteredVolumeGateway(new MemoryVolumeGateway(), metrics), _log, _cluster, metrics, null);
        await _api.StartAsync(CancellationToken.None);
        _contact = $"127.0.0.1:{_api.BoundEndPoint.Port}";
    }

    public async Task DisposeAsync() => await _api.DisposeAsync();

    private async Task<(int Code, string Out, string Err)> Run(bool terminal, Stream? stdin, long? inputLength, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var stdout = new MemoryStream();
        var io = new CliIo(o, e, () => stdin ?? Stream.Null, () => stdout, OutIsTerminal: terminal, ErrIsTerminal: terminal, InputLength: inputLength);
        var code = await CloudFsCli.RunAsync([.. args, "--contact", _contact], io);
        return (code, o.ToString(), e.ToString());
    }

    private VolumeSummary AddVolume(string? name, long size, string health)
    {
        var id = Id160.Random().ToString();
        var v = new VolumeSummary(id, size, VolumeMode.Sync, HostA, [HostA, HostB], Id160.Random().ToString(), name, health,
            Lag: [new ReplicaLag(HostA, "primary", 0, 0), new ReplicaLag(HostB, "away", 3, 12288)], CurrentReplicas: 1);
        _cluster.Volumes.Add(v);
        return v;
    }

    [Fact]
    public async Task Ls_on_a_terminal_is_a_table_with_headers_human_sizes_and_health_and_piped_it_is_the_spec_lines()
    {
        var web = AddVolume("web", 8L << 30, VolumeHealth.Degraded);
        var db = AddVolume(null, 16L << 20, VolumeHealth.Healthy);

        var (code, table, _) = await Run(terminal: true, null, null, "ls");
        Assert.Equal(0, code);
        var lines = table.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = Assert.Single(lines, l => l.Contains("ID") && l.Contains("HEALTH"));
        Assert.True(header.IndexOf("NAME", StringComparison.Ordinal) < header.IndexOf("SIZE", StringComparison.Ordinal));
        var webRow = Assert.Single(lines, l => l.Contains(web.Id));
        Assert.Contains("8 GiB", webRow);
        Assert.Contains("degraded (1 of 2 current)", webRow);
        Assert.Contains(HostA[..8] + "," + HostB[..8], webRow);
        Assert.DoesNotContain(HostA, webRow);
        Assert.Contains("16 MiB", Assert.Single(lines, l => l.Contains(db.Id)));
        Assert.Contains("2 volumes", table);

        var (_, plain, _) = await Run(terminal: false, null, null, "ls");
        Assert.Equal(
            new[] { VolumeListFormat.Line(web), VolumeListFormat.Line(db) }.Order(StringComparer.Ordinal),
            plain.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Stream_and_apply_show_progress_on_a_terminal_and_print_nothing_extra_when_piped()
    {
        var (code, _, err) = await Run(terminal: true, null, null, "stream", _log.Known.ToString());
        Assert.True(code == 0, err);
        Assert.Matches(@"streamed: 16 B, [0-9.]+ [KMG]?i?B/s\s*\n$", err);

        var body = "ENTRY001ENTRY002ENTRY003"u8.ToArray();
        (code, var output, err) = await Run(terminal: true, new MemoryStream(body), body.Length, "apply");
        Assert.Equal(0, code);
        Assert.Contains("applied 3 entries", output);
        Assert.Matches(@"applied: 24 B of 24 B \(100%\)", err);

        (code, _, err) = await Run(terminal: false, new MemoryStream(body), body.Length, "apply");
        Assert.Equal(0, code);
        Assert.Equal("", err);
        (code, _, err) = await Run(terminal: false, null, null, "stream", _log.Known.ToString());
        Assert.Equal(0, code);
        Assert.Equal("", err);
    }

    [Fact]
    public void A_progress_line_with_a_known_total_says_the_share_done_and_the_time_left()
    {
        var err = new StringWriter();
        var progress = new TransferProgress(err, "applied", 4L << 30);
        progress.Add(1 << 30);
        Assert.Matches(@"^applied: 1 GiB of 4 GiB \(25%\), [0-9.]+ [KMGT]?i?B/s, [0-9:]+ left$", progress.Line());
        var unknown = new TransferProgress(err, "streamed", null);
        unknown.Add(1024);
        Assert.Matches(@"^streamed: 1 KiB, [0-9.]+ [KMGT]?i?B/s$", unknown.Line());
    }
}
