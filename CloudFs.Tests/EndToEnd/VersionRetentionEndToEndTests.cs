// The issue's repro with the real executable on one node (127.0.42.4): `cloudfs branch $VER` after the volume was
// overwritten three times and compaction ran (every 2 s here, 30 s by default): the version is within
// cloudfs.retention.time, so it branches, reads as it was, diffs, and exports as VOL@VER.
using System.Text.RegularExpressions;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class VersionRetentionEndToEndTests : IAsyncLifetime
{
    private readonly OneNode _one = new("127.0.42.4", "--size", "512M") { Config = "cloudfs.compaction.interval = 2s\n" };
    private NodeProcess Node => _one.Node;

    public Task InitializeAsync() => _one.InitializeAsync();

    public Task DisposeAsync() => _one.DisposeAsync();

    private async Task<long> CompactionPasses()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var metrics = await http.GetStringAsync($"{Node.HttpBase}/metrics");
        // Passes run and timer passes skipped over an idle log (one is skipped only when nothing changed since a pass).
        return Counter("cloudfs_compaction_passes_total") + Counter("cloudfs_compaction_skipped_passes_total");

        long Counter(string name) => (long)double.Parse(Regex.Match(metrics, $@"^{name} (\S+)$", RegexOptions.Multiline).Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_version_overwritten_three_times_still_branches_after_compaction_ran()
    {
        var volume = await Node.NewDiskAsync("48M");
        (await Tool.RunAsync("qemu-io", "-f", "raw", Node.Nbd(volume), "-c", "write -P 0x51 0 48M")).AssertOk();
        var version = (await _one.Cli("info", volume)).AssertOk().Out.Trim();
        for (var round = 0; round < 3; round++)
            (await Tool.RunAsync("qemu-io", "-f", "raw", Node.Nbd(volume), "-c", $"write -P {0x61 + round} 0 48M")).AssertOk();
        // Two passes after the overwrites: at least one saw the dead segments whole.
        var passes = await CompactionPasses();
        await Eventually.Until(async () => (await CompactionPasses()) >= passes + 2, TimeSpan.FromSeconds(60), "two compaction passes");

        var branch = (await _one.Cli("branch", version)).AssertOk().Out.Trim();
        var read = (await Tool.RunAsync("qemu-io", "-r", "-f", "raw", Node.Nbd(branch), "-c", "read -P 0x51 0 48M")).AssertOk();
        Assert.DoesNotContain("Pattern verification failed", read.Out);
        var exported = (await Tool.RunAsync("qemu-io", "-r", "-f", "raw", $"{Node.Nbd(volume)}@{version}", "-c", "read -P 0x51 0 48M")).AssertOk();
        Assert.DoesNotContain("Pattern verification failed", exported.Out);
        Assert.Contains($"total {48 << 20} bytes in 1 ranges", (await _one.Cli("diff", volume, version)).AssertOk().Out);
    }
}
