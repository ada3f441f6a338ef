// cloudfs.trash.keep with the real executable (one node on 127.0.16.10, keep = 3 s from a --config file): a volume in
// the trash is purged by the node itself once its time is up, and stays purged after a restart; one restored in time
// is kept.
namespace CloudFs.Tests.EndToEnd;

public sealed class TrashExpiryEndToEndTests : IAsyncLifetime
{
    private const string Address = "127.0.16.10";
    private readonly TempDir _dir = new();
    private NodeProcess? _node;

    private Task<NodeProcess> StartAsync() =>
        NodeProcess.StartAsync(Address, _dir.File("node.log"), "--size", "256M", "--config", _dir.File("trash.conf"));

    public async Task InitializeAsync()
    {
        File.WriteAllText(_dir.File("trash.conf"), "cloudfs.trash { keep = 10s, check-interval = 200ms }\n");
        _node = await StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_node is not null) await _node.DisposeAsync();
        _dir.Dispose();
    }

    private static Task<CloudFs.Tests.Support.ToolResult> Cli(params string[] args) => Tool.CloudFs([.. args, "--contact", Address]);

    [Fact]
    public async Task A_volume_in_the_trash_is_purged_once_its_time_is_up_and_one_restored_in_time_is_kept()
    {
        var gone = (await Cli("newdisk", "1", "--size", "16M", "--name", "scratch")).AssertOk().Out.Trim();
        var kept = (await Cli("newdisk", "1", "--size", "16M", "--name", "keep")).AssertOk().Out.Trim();
        (await Cli("rm", "keep")).AssertOk();
        (await Cli("trash", "restore", "keep")).AssertOk();
        (await Cli("rm", "scratch")).AssertOk();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((await _node!.HeadsAsync()).Contains(gone))
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"volume {gone} was not purged within 60 s of a 10 s keep\n{_node.Stderr}");
            await Task.Delay(100);
        }
        Assert.DoesNotContain(gone, (await Cli("trash", "ls")).AssertOk().Out);
        Assert.Contains($"purged volume {gone}", _node.Stderr);

        // Purged for good: a restart (roll forward over the purge entry or a checkpoint after it) does not bring it back.
        Assert.Equal(0, await _node.StopAsync());
        await _node.DisposeAsync();
        _node = await StartAsync();
        var heads = await _node.HeadsAsync();
        Assert.DoesNotContain(gone, heads);
        Assert.Contains(kept, heads);
        Assert.Contains(" keep ", (await Cli("ls")).AssertOk().Out);
    }
}
