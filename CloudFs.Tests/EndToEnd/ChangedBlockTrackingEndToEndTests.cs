// Changed-block tracking over NBD with the real executable and the real clients, on two joined nodes (127.0.42.1,
// 127.0.42.2): the meta context cloudfs:changed-since:<version> as nbdinfo --map shows it, on the node holding the
// volume and on the other one (through the volume's actor there); VOL@VERSION read on either node.
using System.Text.Json;

namespace CloudFs.Tests.EndToEnd;

public sealed class TrackingNodes : IAsyncLifetime
{
    internal TempDir Dir { get; } = new();
    internal NodeProcess First { get; private set; } = null!;
    internal NodeProcess Second { get; private set; } = null!;
    internal NodeProcess[] Both => [First, Second];

    public async Task InitializeAsync()
    {
        First = await NodeProcess.StartAsync("127.0.42.1", Dir.File("first.log"), "--size", "1G");
        Second = await NodeProcess.StartAsync("127.0.42.2", Dir.File("second.log"), "--size", "1G", "--seeds", "127.0.42.1");
    }

    public async Task DisposeAsync()
    {
        if (Second is not null) await Second.DisposeAsync();
        if (First is not null) await First.DisposeAsync();
        Dir.Dispose();
    }
}

public sealed class ChangedBlockTrackingEndToEndTests(TrackingNodes nodes) : IClassFixture<TrackingNodes>
{
    private const long K = 1024, M = K * K;

    private static Task<ToolResult> Cli(string contact, params string[] args) => Tool.CloudFs([.. args, "--contact", contact]);

    private async Task<string> Version(string volume) => (await Cli(nodes.First.Listen, "info", volume)).AssertOk().Out.Trim();

    private static async Task QemuIo(string uri, params string[] commands) =>
        (await Tool.RunAsync("qemu-io", ["-f", "raw", uri, .. commands.SelectMany(c => new[] { "-c", c })])).AssertOk();

    /// <summary>The extents nbdinfo --map=CONTEXT --json prints: offset, length, type (the context's flags).</summary>
    private static async Task<List<(long Offset, long Length, int Type)>> Map(string context, string uri)
    {
        var map = (await Tool.RunAsync("nbdinfo", $"--map={context}", "--json", uri)).AssertOk();
        using var json = JsonDocument.Parse(map.Out);
        return json.RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("offset").GetInt64(), e.GetProperty("length").GetInt64(), e.GetProperty("type").GetInt32()))
            .ToList();
    }

    private static List<(long, long)> Changed(List<(long Offset, long Length, int Type)> extents) =>
        extents.Where(e => e.Type == 1).Select(e => (e.Offset, e.Length)).ToList();

    [Fact]
    public async Task Nbdinfo_map_of_changed_since_shows_the_ranges_written_after_each_version_on_either_node()
    {
        var volume = await nodes.First.NewDiskAsync("64M");
        // One replica: written through the node that holds it; the other node answers through the volume's actor.
        var holder = (await nodes.First.HeadsAsync()).Contains(volume) ? nodes.First : nodes.Second;
        await QemuIo(holder.Nbd(volume), "write -P 1 0 64k");
        var v1 = await Version(volume);
        await QemuIo(holder.Nbd(volume), "write -P 2 1M 8k", "write -z 1032k 8k");
        var v2 = await Version(volume);
        await QemuIo(holder.Nbd(volume), "write -P 3 32M 4k", "discard 40M 64k");
        var v3 = await Version(volume);

        foreach (var node in nodes.Both)
        {
            var sinceV1 = await Map($"cloudfs:changed-since:{v1}", node.Nbd(volume));
            Assert.Equal(64 * M, sinceV1.Sum(e => e.Length));
            Assert.Equal([(1 * M, 16 * K), (32 * M, 4 * K), (40 * M, 64 * K)], Changed(sinceV1));
            Assert.Equal([(32 * M, 4 * K), (40 * M, 64 * K)], Changed(await Map($"cloudfs:changed-since:{v2}", node.Nbd(volume))));
            Assert.Empty(Changed(await Map($"cloudfs:changed-since:{v3}", node.Nbd(volume))));
            // The volume's id is its first version: everything written since it was created.
            Assert.Equal([(0L, 64 * K), (1 * M, 16 * K), (32 * M, 4 * K), (40 * M, 64 * K)], Changed(await Map($"cloudfs:changed-since:{volume}", node.Nbd(volume))));
        }
    }

    [Fact]
    public async Task A_version_export_reads_that_version_on_either_node_while_the_volume_takes_writes()
    {
        var volume = await nodes.First.NewDiskAsync("16M");
        var holder = (await nodes.First.HeadsAsync()).Contains(volume) ? nodes.First : nodes.Second;
        await QemuIo(holder.Nbd(volume), "write -P 0x41 0 1M");
        var v1 = await Version(volume);
        await QemuIo(holder.Nbd(volume), "write -P 0x42 512k 1M", "write -z 0 64k");
        foreach (var node in nodes.Both)
        {
            var read = (await Tool.RunAsync("qemu-io", "-r", "-f", "raw", $"{node.Nbd(volume)}@{v1}", "-c", "read -P 0x41 0 1M", "-c", "read -P 0 1M 1M")).AssertOk();
            Assert.DoesNotContain("Pattern verification failed", read.Out);
            var write = await Tool.RunAsync("qemu-io", "-f", "raw", $"{node.Nbd(volume)}@{v1}", "-c", "write 0 4k");
            Assert.NotEqual(0, write.Code);
        }
        var now = (await Tool.RunAsync("qemu-io", "-r", "-f", "raw", holder.Nbd(volume), "-c", "read -P 0 0 64k", "-c", "read -P 0x42 512k 1M")).AssertOk();
        Assert.DoesNotContain("Pattern verification failed", now.Out);
    }

    [Fact]
    public async Task Nbdinfo_map_of_an_unknown_version_fails()
    {
        var volume = await nodes.First.NewDiskAsync("16M");
        var nowhere = new string('7', 40);
        var refused = await Tool.RunAsync("nbdinfo", $"--map=cloudfs:changed-since:{nowhere}", nodes.Second.Nbd(volume));
        Assert.NotEqual(0, refused.Code);
        Assert.Contains("cloudfs:changed-since", refused.Err);
    }
}
