// cloudfs.trash.keep with the real executable (one node on 127.0.16.10, keep = 3 s from a --config file): a volume in
// the trash is purged by the node itself once its time is up, and stays purged after a restart; one restored in time
// is kept.
namespace CloudFs.Tests.EndToEnd;

public sealed class TrashExpiryEndToEndTests : IAsyncLifetime
{
    private readonly OneNode _one = new("127.0.16.10", "--size", "256M") { Config = "cloudfs.trash { keep = 10s, check-interval = 200ms }\n" };
    private NodeProcess Node => _one.Node;

    public Task InitializeAsync() => _one.InitializeAsync();

    public Task DisposeAsync() => _one.DisposeAsync();

    [Fact]
    public async Task A_volume_in_the_trash_is_purged_once_its_time_is_up_and_one_restored_in_time_is_kept()
    {
        var gone = (await _one.Cli("newdisk", "1", "--size", "16M", "--name", "scratch")).AssertOk().Out.Trim();
        var kept = (await _one.Cli("newdisk", "1", "--size", "16M", "--name", "keep")).AssertOk().Out.Trim();
        (await _one.Cli("rm", "keep")).AssertOk();
        (await _one.Cli("trash", "restore", "keep")).AssertOk();
        (await _one.Cli("rm", "scratch")).AssertOk();

        await Eventually.Until(async () => !(await Node.HeadsAsync()).Contains(gone), TimeSpan.FromSeconds(60),
            () => $"volume {gone} purged (a 10 s keep)\n{Node.Stderr}");
        Assert.DoesNotContain(gone, (await _one.Cli("trash", "ls")).AssertOk().Out);
        Assert.Contains($"purged volume {gone}", Node.Stderr);

        // Purged for good: a restart (roll forward over the purge entry or a checkpoint after it) does not bring it back.
        await _one.RestartAsync();
        var heads = await Node.HeadsAsync();
        Assert.DoesNotContain(gone, heads);
        Assert.Contains(kept, heads);
        Assert.Contains(" keep ", (await _one.Cli("ls")).AssertOk().Out);
    }
}
