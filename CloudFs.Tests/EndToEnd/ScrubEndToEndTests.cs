// Three real nodes on 127.0.3.1-3 and a sync volume written with qemu-io: bytes flipped in the primary's log under the
// running node; a qemu-io read through another node still gets the right data; `cloudfs scrub` reports and repairs the
// other bad block (exit 0); `cloudfs verify --deep` finds the replicas equal; `ls` says healthy; /metrics counts it.
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class ScrubEndToEndTests : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.3.1", "127.0.3.2", "127.0.3.3"];
    private readonly ProcessCluster _cluster = new(Addresses, "--size", "256M");
    private NodeProcess?[] Nodes => _cluster.Nodes;

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    /// <summary>Where the first 4 KiB of <paramref name="pattern"/> bytes sits in a node's log file (the written entry's data).</summary>
    private static long Find(string device, byte pattern)
    {
        var run = new byte[4096];
        Array.Fill(run, pattern);
        var at = HeldLogFile.Find(device, run);
        Assert.True(at >= 0, $"pattern 0x{pattern:x2} is not in {device}");
        return at;
    }

    private static async Task<string> MetricAsync(NodeProcess node, string name)
    {
        var text = (await Tool.RunAsync("curl", "-s", $"{node.HttpBase}/metrics")).AssertOk().Out;
        return text.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1];
    }

    [Fact]
    public async Task A_flipped_byte_in_the_primary_log_reads_right_is_repaired_by_scrub_and_verify_deep_finds_the_replicas_equal()
    {
        var created = (await Tool.CloudFs("newdisk", "3", "--mode", "sync", "--size", "64M", "--contact", Addresses[0])).AssertOk();
        var volume = created.Out.Trim();
        var primaryId = created.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Split(' ')[0];
        var primary = Nodes.First(n => n!.HostId == primaryId)!;
        var other = Nodes.First(n => n != primary)!;
        (await Tool.QemuIo(primary.Nbd(volume), "write -P 0x5a 0 64k", "write -P 0x3c 4M 64k", "flush")).AssertOk();
        await Eventually.Until(async () => (await Task.WhenAll(Nodes.Select(n => n!.HeadAsync(volume)))).Distinct().Count() == 1,
            TimeSpan.FromSeconds(30), "the replicas at the primary's head");

        HeldLogFile.FlipBit(primary.Device, Find(primary.Device, 0x5a) + 8192 + 100, 2);
        HeldLogFile.FlipBit(primary.Device, Find(primary.Device, 0x3c) + 4096 + 7, 6);

        // The read reaches the primary, which restores the block from a replica and answers with the right bytes.
        (await Tool.QemuIo(other.Nbd(volume), "read -P 0x5a 0 64k")).AssertOk();
        Assert.Equal("1", await MetricAsync(primary, "cloudfs_repair_reads_total"));

        var scrub = await Tool.CloudFs("scrub", volume, "--contact", Addresses[1]);
        Assert.True(scrub.Code == 0, scrub.ToString());
        var line = Assert.Single(scrub.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"{volume} {primaryId} {(4 << 20) + 4096} 512 repaired log block ", line);
        Assert.Equal(3, scrub.Err.Split('\n').Count(l => l.Contains("bytes verified")));

        var verify = await Tool.CloudFs("verify", volume, "--deep", "--contact", Addresses[2]);
        Assert.True(verify.Code == 0, verify.ToString());
        var replicas = verify.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, replicas.Length);
        Assert.All(replicas, r => Assert.EndsWith(" equal", r));
        Assert.Contains("all alike", verify.Err);

        (await Tool.QemuIo(other.Nbd(volume), "read -P 0x5a 0 64k", "read -P 0x3c 4M 64k")).AssertOk();
        var ls = (await Tool.CloudFs("ls", "--contact", Addresses[0])).AssertOk().Out;
        Assert.Equal("healthy", ls.Split('\n').Select(l => l.Split(' ')).Single(f => f[0] == volume)[7]);
        Assert.Equal("2", await MetricAsync(primary, "cloudfs_repair_blocks_total"));
        Assert.Equal("0", await MetricAsync(primary, "cloudfs_damaged_bytes"));
    }
}
