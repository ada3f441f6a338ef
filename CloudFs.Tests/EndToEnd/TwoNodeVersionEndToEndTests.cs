// Versions on two joined nodes with the real executable (127.0.50.1, 127.0.50.2), each volume on one of them: after
// `cloudfs resize --allow-shrink` the export VOL@VERSION of an older version still has its old size (nbdinfo) and reads
// its data past the new end, on the node that holds the volume and on the other one (which asks the volume's actor);
// `cloudfs protect|unprotect VERSION` asked of the node that does not hold the volume is passed on to one that does.
using System.Text.Json;

namespace CloudFs.Tests.EndToEnd;

public sealed class TwoVersionNodes : IAsyncLifetime
{
    internal TempDir Dir { get; } = new();
    internal NodeProcess First { get; private set; } = null!;
    internal NodeProcess Second { get; private set; } = null!;
    internal NodeProcess[] Both => [First, Second];

    public async Task InitializeAsync()
    {
        First = await NodeProcess.StartAsync("127.0.50.1", Dir.File("first.log"), "--size", "1G");
        Second = await NodeProcess.StartAsync("127.0.50.2", Dir.File("second.log"), "--size", "1G", "--seeds", "127.0.50.1");
    }

    public async Task DisposeAsync()
    {
        if (Second is not null) await Second.DisposeAsync();
        if (First is not null) await First.DisposeAsync();
        Dir.Dispose();
    }
}

public sealed class TwoNodeVersionEndToEndTests(TwoVersionNodes nodes) : IClassFixture<TwoVersionNodes>
{
    private const long M = 1024 * 1024;

    private static Task<ToolResult> Cli(string contact, params string[] args) => Tool.CloudFs([.. args, "--contact", contact]);

    private async Task<string> Version(string volume) => (await Cli(nodes.First.Listen, "info", volume)).AssertOk().Out.Trim();

    private static async Task<long> NbdSize(string uri) => long.Parse((await Tool.RunAsync("nbdinfo", "--size", uri)).AssertOk().Out.Trim());

    [Fact]
    public async Task After_a_shrink_and_a_grow_an_older_version_export_keeps_its_size_and_data_on_either_node()
    {
        var volume = await nodes.First.NewDiskAsync("16M");
        var holder = (await nodes.First.HeadsAsync()).Contains(volume) ? nodes.First : nodes.Second;
        (await Tool.RunAsync("qemu-io", "-f", "raw", holder.Nbd(volume), "-c", "write -P 0x5a 12M 1M")).AssertOk();
        var before = await Version(volume);
        (await Cli(nodes.First.Listen, "resize", volume, "8M", "--allow-shrink")).AssertOk();
        var shrunk = await Version(volume);
        // Past the volume's end now, within the older version's: read there on either node.
        foreach (var node in nodes.Both)
        {
            Assert.Equal(16 * M, await NbdSize($"{node.Nbd(volume)}@{before}"));
            var read = (await Tool.RunAsync("qemu-io", "-r", "-f", "raw", $"{node.Nbd(volume)}@{before}", "-c", "read -P 0x5a 12M 1M")).AssertOk();
            Assert.DoesNotContain("Pattern verification failed", read.Out);
        }
        (await Cli(nodes.First.Listen, "resize", volume, "32M")).AssertOk();

        foreach (var node in nodes.Both)
        {
            // The volume's own export on the node that does not hold it follows the resize once placement hears of it.
            await Eventually.Until(async () => (await NbdSize(node.Nbd(volume))) == 32 * M, TimeSpan.FromSeconds(30),
                $"the export of the grown volume on {node.Listen} to be 32 MiB");
            Assert.Equal(16 * M, await NbdSize($"{node.Nbd(volume)}@{before}"));
            Assert.Equal(8 * M, await NbdSize($"{node.Nbd(volume)}@{shrunk}"));
        }
        // The diff from before the shrink covers the larger size and names both.
        var diff = (await Cli(holder.Listen, "diff", volume, before, shrunk)).AssertOk().Out;
        Assert.Contains($"{8 * M} {8 * M}\n", diff);
        Assert.Contains($"size {16 * M} -> {8 * M} bytes", diff);
    }

    private static async Task<string[]> ProtectedIn(string contact, string volume)
    {
        using var doc = JsonDocument.Parse((await Cli(contact, "ls", "--json")).AssertOk().Out);
        var v = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetString() == volume);
        return v.GetProperty("protected").EnumerateArray().Select(p => p.GetString()!).ToArray();
    }

    [Fact]
    public async Task Protect_and_unprotect_asked_of_a_node_that_does_not_hold_the_volume_are_passed_to_one_that_does()
    {
        var volume = await nodes.First.NewDiskAsync("8M");
        var holder = (await nodes.First.HeadsAsync()).Contains(volume) ? nodes.First : nodes.Second;
        var other = holder == nodes.First ? nodes.Second : nodes.First;
        Assert.DoesNotContain(volume, await other.HeadsAsync());
        (await Tool.RunAsync("qemu-io", "-f", "raw", holder.Nbd(volume), "-c", "write -P 0x33 0 1M")).AssertOk();
        var version = await Version(volume);

        Assert.Contains($"version {version} of volume {volume} is protected", (await Cli(other.Listen, "protect", version)).AssertOk().Out);
        await Eventually.Until(async () => (await ProtectedIn(other.Listen, volume)).SequenceEqual([version]), TimeSpan.FromSeconds(30),
            "ls --json lists the protected version");
        Assert.Contains($"version {version} of volume {volume} is no longer protected", (await Cli(other.Listen, "unprotect", version)).AssertOk().Out);
        // A version no node holds is still refused with the reason, and changes nothing.
        var unknown = await Cli(other.Listen, "protect", new string('a', 40));
        Assert.NotEqual(0, unknown.Code);
        Assert.Contains("is not a version of any volume this node holds", unknown.Err);
    }
}
