// The real node under sustained overwrites, as a new user tries it: fio rewrites a volume of a quarter of the log six
// times over NBD; no write fails for space, and every block reads back (also after a restart).
using System.Text.RegularExpressions;

namespace CloudFs.Tests.EndToEnd;

public sealed class SpacePressureEndToEndTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Six_sequential_overwrites_of_a_quarter_of_the_log_complete_and_every_block_reads_back()
    {
        var device = _dir.File("overwrite.log");
        string volume;
        string[] Job(string uri) =>
        [
            "--name=overwrite", "--ioengine=nbd", $"--uri={uri}", "--rw=write", "--bs=1M", "--iodepth=8", "--size=256M",
            "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0",
        ];
        await using (var node = await NodeProcess.StartAsync("127.0.1.1", device, "--size", "1G"))
        {
            volume = await node.NewDiskAsync("256M");
            // 1.5 GiB into a 1 GiB log: it fills long before the compaction timer (30 s) would run.
            var fio = await Tool.RunAsync("fio", [.. Job(node.Nbd(volume)), "--loops=6", "--do_verify=1"], TimeSpan.FromSeconds(300));
            Assert.True(fio.Code == 0, fio.ToString());
            Assert.DoesNotContain("verify:", fio.Err);

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var metrics = await http.GetStringAsync($"{node.HttpBase}/metrics");
            Assert.True(Counter(metrics, "cloudfs_compaction_freed_segments_total") > 0, metrics);
            Assert.Equal(0, Counter(metrics, "cloudfs_log_space_refused_total"));
            Assert.Equal(0, await node.StopAsync());
        }
        // What compaction moved and freed is what a restarted node reads.
        await using var restarted = await NodeProcess.StartAsync("127.0.1.1", device, "--size", "1G");
        var verify = await Tool.RunAsync("fio", [.. Job(restarted.Nbd(volume)), "--verify_only"], TimeSpan.FromSeconds(300));
        Assert.True(verify.Code == 0, verify.ToString());
        Assert.DoesNotContain("verify:", verify.Err);
    }

    private static double Counter(string metrics, string name)
    {
        var m = Regex.Match(metrics, $"^{name} (\\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"{name} is not in /metrics");
        return double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
