// docs/BACKUP.md's recipe with the real executable, the script and the real clients on one node (127.0.42.3): a full
// backup of VOL@V1 and two incrementals (since V1 from VOL@V2, since V2 from VOL@V3) restore an image qemu-img compare
// finds identical to V3, each incremental copying exactly what `cloudfs diff` reports; VOL@V2 reads V2 while writes go on;
// across a shrink and a grow each incremental's image has its version's size.
using System.Text.Json;
using System.Text.RegularExpressions;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class BackupRecipeEndToEndTests : IAsyncLifetime
{
    private readonly OneNode _one = new("127.0.42.3", "--size", "1G");
    private NodeProcess Node => _one.Node;

    public Task InitializeAsync() => _one.InitializeAsync();

    public Task DisposeAsync() => _one.DisposeAsync();

    private async Task<string> Version(string volume) => (await _one.Cli("info", volume)).AssertOk().Out.Trim();

    private static async Task QemuIo(string uri, params string[] commands)
    {
        // A version export is read-only: qemu-io opens it so.
        string[] mode = uri.Contains('@') ? ["-r"] : [];
        var result = (await Tool.RunAsync("qemu-io", [.. mode, "-f", "raw", uri, .. commands.SelectMany(c => new[] { "-c", c })])).AssertOk();
        Assert.DoesNotContain("Pattern verification failed", result.Out);
    }

    /// <summary>scripts/cloudfs-backup, run by the system python (which carries python3-libnbd's module).</summary>
    private static async Task<ToolResult> Backup(params string[] args)
    {
        Tool.Require("nbdsh"); // python3-libnbd: ./run-tests installs it
        return (await Tool.RunAsync("/usr/bin/python3", [Path.Combine(Repo.Root, "scripts", "cloudfs-backup"), .. args], TimeSpan.FromSeconds(120))).AssertOk();
    }

    private async Task<long> DiffBytes(string volume, string from, string to) =>
        JsonDocument.Parse((await _one.Cli("diff", volume, from, to, "--json")).AssertOk().Out).RootElement.GetProperty("bytes").GetInt64();

    private static long Copied(ToolResult incremental) =>
        long.Parse(Regex.Match(incremental.Out, @"incremental: (\d+) bytes").Groups[1].Value);

    [Fact]
    public async Task A_full_backup_and_two_incrementals_restore_an_image_identical_to_the_third_version()
    {
        var volume = await Node.NewDiskAsync("64M");
        var nbd = Node.Nbd(volume);
        await QemuIo(nbd, "write -P 0x11 0 4M", "write -P 0x12 20M 1M");
        var v1 = await Version(volume);
        var image = _one.Dir.File("backup.img");
        (await Backup("full", $"{nbd}@{v1}", image)).AssertOk();

        await QemuIo(nbd, "write -P 0x21 1M 512k", "write -z 20M 64k", "discard 3M 1M", "write -P 0x22 40M 8k");
        var v2 = await Version(volume);
        // Writes go on while V2 is copied: the export keeps reading V2.
        await QemuIo(nbd, "write -P 0x31 40M 4k", "write -P 0x32 63M 1M");
        await QemuIo($"{nbd}@{v2}", "read -P 0x22 40M 8k", "read -P 0x21 1M 512k", "read -P 0 63M 1M");
        var first = await Backup("incremental", $"{nbd}@{v2}", v1, image);
        Assert.Equal(await DiffBytes(volume, v1, v2), Copied(first));

        var v3 = await Version(volume);
        var second = await Backup("incremental", $"{nbd}@{v3}", v2, image);
        Assert.Equal(await DiffBytes(volume, v2, v3), Copied(second));
        Assert.Equal((4L << 10) + (1L << 20), Copied(second));

        var compare = (await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "raw", image, $"{nbd}@{v3}")).AssertOk();
        Assert.Contains("Images are identical", compare.Out);
        // And not by accident: V2 differs from the image.
        Assert.NotEqual(0, (await Tool.RunAsync("qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", image, $"{nbd}@{v2}")).Code);
    }

    [Fact]
    public async Task Incrementals_across_a_shrink_and_a_grow_restore_each_version_at_its_own_size()
    {
        var volume = await Node.NewDiskAsync("16M");
        var nbd = Node.Nbd(volume);
        await QemuIo(nbd, "write -P 0x41 0 1M", "write -P 0x42 12M 1M");
        var v1 = await Version(volume);
        var image = _one.Dir.File("resized.img");
        (await Backup("full", $"{nbd}@{v1}", image)).AssertOk();
        (await _one.Cli("resize", volume, "8M", "--allow-shrink")).AssertOk();
        await QemuIo(nbd, "write -P 0x43 1M 64k");
        var v2 = await Version(volume);
        (await _one.Cli("resize", volume, "32M")).AssertOk();
        await QemuIo(nbd, "write -P 0x44 20M 64k");
        var v3 = await Version(volume);

        // V2 is copied after the grow: its export, and so the image, is as large as V2 was.
        await Backup("incremental", $"{nbd}@{v2}", v1, image);
        Assert.Equal(8 << 20, new FileInfo(image).Length);
        Assert.Contains("Images are identical", (await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "raw", image, $"{nbd}@{v2}")).AssertOk().Out);
        await Backup("incremental", $"{nbd}@{v3}", v2, image);
        Assert.Equal(32 << 20, new FileInfo(image).Length);
        Assert.Contains("Images are identical", (await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "raw", image, $"{nbd}@{v3}")).AssertOk().Out);
    }

    [Fact]
    public async Task An_incremental_since_an_unknown_version_fails_with_a_reason_and_leaves_the_image_alone()
    {
        var volume = await Node.NewDiskAsync("16M");
        var image = _one.Dir.File("other.img");
        await File.WriteAllBytesAsync(image, new byte[16 << 20]);
        var v = await Version(volume);
        var refused = await Tool.RunAsync("/usr/bin/python3", [Path.Combine(Repo.Root, "scripts", "cloudfs-backup"), "incremental", $"{Node.Nbd(volume)}@{v}", new string('7', 40), image]);
        Assert.NotEqual(0, refused.Code);
        Assert.Contains("refused the context cloudfs:changed-since:" + new string('7', 40), refused.Err);
        Assert.Equal(16 << 20, new FileInfo(image).Length);
    }
}
