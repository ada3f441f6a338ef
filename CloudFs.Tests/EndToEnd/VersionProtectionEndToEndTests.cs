// `cloudfs protect VERSION` / `unprotect` with the real executable on one node (127.0.48.1), retention 0 as TestCluster
// runs (so only the protection keeps history) and compaction every 2 s: a protected version stays branchable and
// diffable after the volume is overwritten and compaction ran, also after the node restarts; `ls --json` lists it;
// once unprotected compaction takes it and `branch` names it and the oldest version still available. Bad requests are
// refused with a reason and change nothing.
using System.Text.Json;
using System.Text.RegularExpressions;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class VersionProtectionEndToEndTests : IAsyncLifetime
{
    private readonly OneNode _one = new("127.0.48.1", "--size", "512M") { Config = "cloudfs.compaction.interval = 2s\ncloudfs.retention.time = 0\n" };
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

    private async Task TwoCompactionPasses()
    {
        var passes = await CompactionPasses();
        await Eventually.Until(async () => (await CompactionPasses()) >= passes + 2, TimeSpan.FromSeconds(60), "two compaction passes");
    }

    private async Task Overwrite(string volume, int rounds, int pattern)
    {
        for (var round = 0; round < rounds; round++)
            (await Tool.RunAsync("qemu-io", "-f", "raw", Node.Nbd(volume), "-c", $"write -P {pattern + round} 0 48M")).AssertOk();
    }

    private async Task<string[]> ProtectedIn(string volume)
    {
        var ls = (await _one.Cli("ls", "--json")).AssertOk().Out;
        using var doc = JsonDocument.Parse(ls);
        var v = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetString() == volume);
        return v.GetProperty("protected").EnumerateArray().Select(p => p.GetString()!).ToArray();
    }

    private async Task AssertBranchesAndDiffs(string volume, string version)
    {
        var branch = (await _one.Cli("branch", version)).AssertOk().Out.Trim();
        var read = (await Tool.RunAsync("qemu-io", "-r", "-f", "raw", Node.Nbd(branch), "-c", "read -P 0x51 0 48M")).AssertOk();
        Assert.DoesNotContain("Pattern verification failed", read.Out);
        Assert.Contains($"total {48 << 20} bytes in 1 ranges", (await _one.Cli("diff", volume, version)).AssertOk().Out);
    }

    [Fact]
    public async Task A_protected_version_stays_branchable_over_compaction_and_a_restart_until_unprotected()
    {
        var volume = await Node.NewDiskAsync("48M");
        (await Tool.RunAsync("qemu-io", "-f", "raw", Node.Nbd(volume), "-c", "write -P 0x51 0 48M")).AssertOk();
        var version = (await _one.Cli("info", volume)).AssertOk().Out.Trim();

        Assert.Contains($"version {version} of volume {volume} is protected", (await _one.Cli("protect", version)).AssertOk().Out);
        await Eventually.Until(async () => (await ProtectedIn(volume)).SequenceEqual([version]), TimeSpan.FromSeconds(30),
            "ls --json lists the protected version");
        await Overwrite(volume, 3, 0x61);
        await TwoCompactionPasses();
        await AssertBranchesAndDiffs(volume, version);

        // A restart keeps the protection (the checkpoint's history section, or the Protect entry replayed).
        await _one.RestartAsync();
        await Overwrite(volume, 1, 0x71);
        await TwoCompactionPasses();
        await AssertBranchesAndDiffs(volume, version);
        Assert.Equal([version], await ProtectedIn(volume));

        Assert.Contains($"version {version} of volume {volume} is no longer protected", (await _one.Cli("unprotect", version)).AssertOk().Out);
        var again = await _one.Cli("unprotect", version);
        Assert.NotEqual(0, again.Code);
        Assert.Contains($"version {version} of volume {volume} is not protected", again.Err);
        await Overwrite(volume, 1, 0x75);
        var head = (await _one.Cli("info", volume)).AssertOk().Out.Trim();
        await TwoCompactionPasses();
        var gone = await _one.Cli("branch", version);
        Assert.NotEqual(0, gone.Code);
        Assert.Contains($"version {version} is no longer available", gone.Err);
        Assert.Contains($"the oldest version still available is {head}", gone.Err);
        await Eventually.Until(async () => (await ProtectedIn(volume)).Length == 0, TimeSpan.FromSeconds(30),
            "ls --json lists no protected version");
    }

    [Fact]
    public async Task Protecting_an_unknown_version_is_refused_with_a_reason_and_changes_nothing()
    {
        var volume = await Node.NewDiskAsync("8M");
        var before = (await _one.Cli("info", volume)).AssertOk().Out.Trim();
        var unknown = new string('7', 40);
        var refused = await _one.Cli("protect", unknown);
        Assert.NotEqual(0, refused.Code);
        Assert.Contains($"version {unknown} is not a version of any volume this node holds", refused.Err);
        Assert.Equal(before, (await _one.Cli("info", volume)).AssertOk().Out.Trim());
        Assert.Empty(await ProtectedIn(volume));
    }
}
