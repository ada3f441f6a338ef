// `cloudfs mount` against one real node (127.0.51.21-22, one node per test) when its connection breaks: after the node
// restarts the mount reconnects by itself (its attachment gets its lease back) and goes on, the files written before
// and after intact; after `cloudfs detach --force` the node refuses the mount's attachment when it reconnects, and the
// mount says so in one line; nothing it writes after the revoke reaches the volume, and a new mount sees the volume as
// it was.
using CloudFs.Tests.Support;
using Xunit.Abstractions;

namespace CloudFs.Tests.EndToEnd;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class MountReconnectEndToEndTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task<NodeProcess> StartNodeAsync(string address) => NodeProcess.StartAsync(address, _dir.File($"{address}.log"), "--size", "512M");

    private static void WriteSynced(string path, byte[] data)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        file.Write(data);
        file.Flush(flushToDisk: true);
    }

    private static byte[] Random(int length)
    {
        var data = new byte[length];
        System.Random.Shared.NextBytes(data);
        return data;
    }

    [Fact]
    public async Task After_its_node_restarts_a_mount_reconnects_and_goes_on()
    {
        const string address = "127.0.51.21";
        var node = await StartNodeAsync(address);
        try
        {
            var volume = await node.NewDiskAsync("128M");
            var before = Random(1 << 20);
            var after = Random(1 << 20);
            await using (var mount = await MountProcess.StartAsync(_dir.File("mnt"), address))
            {
                await Eventually.Until(() => Directory.Exists(mount.PathOf(volume)), TimeSpan.FromSeconds(60), $"the volume to be mounted\n{mount.Output}");
                WriteSynced(mount.PathOf(volume, "before.bin"), before);

                // The node restarts on its log: the mount's connection breaks, and nbdkit's retry filter reconnects.
                Assert.Equal(0, await node.StopAsync());
                await node.DisposeAsync();
                node = await StartNodeAsync(address);
                output.WriteLine("node restarted");

                // Written and fsynced after the restart: it waits for the reconnection, then lands.
                WriteSynced(mount.PathOf(volume, "after.bin"), after);
                Assert.Equal(before, await File.ReadAllBytesAsync(mount.PathOf(volume, "before.bin")));
                Assert.DoesNotContain("refused this mount's read-write attachment", mount.Output);
                Assert.Equal(0, await mount.StopAsync());
            }

            // Both are on the volume (not only in the first mount's page cache): a new mount reads them back.
            await using var again = await MountProcess.StartAsync(_dir.File("again"), address);
            await Eventually.Until(() => Directory.Exists(again.PathOf(volume)), TimeSpan.FromSeconds(60), $"the volume to be mounted again\n{again.Output}");
            Assert.Equal(before, await File.ReadAllBytesAsync(again.PathOf(volume, "before.bin")));
            Assert.Equal(after, await File.ReadAllBytesAsync(again.PathOf(volume, "after.bin")));
            Assert.Equal(0, await again.StopAsync());
        }
        finally
        {
            await node.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_mount_whose_attachment_was_revoked_says_so_and_nothing_it_writes_after_lands()
    {
        const string address = "127.0.51.22";
        await using var node = await StartNodeAsync(address);
        var volume = await node.NewDiskAsync("128M");
        var kept = Random(4096);
        await using (var mount = await MountProcess.StartAsync(_dir.File("mnt"), address))
        {
            await Eventually.Until(() => Directory.Exists(mount.PathOf(volume)), TimeSpan.FromSeconds(60), $"the volume to be mounted\n{mount.Output}");
            WriteSynced(mount.PathOf(volume, "kept.bin"), kept);

            (await Tool.CloudFs("detach", volume, "--force", "--contact", address)).AssertOk();
            // Its writes are refused from now on; when it reconnects its attachment is refused, and it says so. The
            // fsync fails with EIO, or reports nothing once ext4 has turned itself read-only after the first failed write:
            // either way nothing of it reaches the volume (below).
            var refused = Task.Run(() => WriteSynced(mount.PathOf(volume, "refused.bin"), Random(4096)));
            await Eventually.Until(() => mount.Output.Contains($"volume {volume}: the node refused this mount's read-write attachment"),
                TimeSpan.FromSeconds(60), $"the mount to report the revoked attachment\n{mount.Output}");
            try { await refused.WaitAsync(TimeSpan.FromSeconds(60)); }
            catch (IOException e) { output.WriteLine($"the write after the revoke failed: {e.Message}"); }
            Assert.Equal(0, await mount.StopAsync());
        }

        // Another mount (another attachment) gets the volume read-write at once, as it was: what was fsynced before the
        // revoke, and nothing written after it.
        await using var again = await MountProcess.StartAsync(_dir.File("again"), address);
        await Eventually.Until(() => Directory.Exists(again.PathOf(volume)), TimeSpan.FromSeconds(60), $"the volume to be mounted again\n{again.Output}");
        Assert.Equal(kept, await File.ReadAllBytesAsync(again.PathOf(volume, "kept.bin")));
        Assert.False(File.Exists(again.PathOf(volume, "refused.bin")));
        Assert.Equal(0, await again.StopAsync());
    }
}
