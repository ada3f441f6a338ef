// `cloudfs mount` against three real nodes on 127.0.41.1-3 (one cluster for the class): files written through a mount
// on node 1 read back byte for byte through a mount on node 2; a second read-write attachment refused while a mount
// holds the volume; a branch taken after `sync` mounts with the files. (The fourth, a kill -9 of the primary
// while mounted on a survivor, is not written yet.)
using Xunit.Abstractions;

namespace CloudFs.Tests.EndToEnd;

public sealed class MountClusterFixture : IAsyncLifetime
{
    public static readonly string[] Addresses = ["127.0.41.1", "127.0.41.2", "127.0.41.3"];
    internal readonly TempDir Dir = new();
    internal readonly NodeProcess?[] Nodes = new NodeProcess?[3];

    public async Task InitializeAsync()
    {
        try
        {
            for (var i = 0; i < 3; i++)
                Nodes[i] = await NodeProcess.StartAsync(Addresses[i], Dir.File($"node{i}.log"), "--seeds", string.Join(",", Addresses), "--size", "1G");
            await ProcessCluster.WaitForMembersAsync(Nodes, Addresses);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var n in Nodes) if (n is not null) await n.DisposeAsync();
        Dir.Dispose();
    }

    /// <summary>A 3-replica volume of 256 MiB (empty: its first mount formats it).</summary>
    public async Task<string> NewVolumeAsync(string mode = "sync")
    {
        var id = (await Tool.CloudFs("newdisk", "3", "--size", "256M", "--mode", mode, "--contact", Addresses[0])).AssertOk().Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", id);
        return id;
    }
}

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class MountEndToEndTests(MountClusterFixture cluster, ITestOutputHelper output) : IClassFixture<MountClusterFixture>
{
    private static readonly string[] Addresses = MountClusterFixture.Addresses;

    private string MountDir(string name) => cluster.Dir.File(name);

    private async Task<MountProcess> MountAsync(string name, int node)
    {
        var mount = await MountProcess.StartAsync(MountDir(name), Addresses[node]);
        output.WriteLine($"mounted {name} through {Addresses[node]}");
        return mount;
    }

    private static void WriteSynced(string path, byte[] data)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        file.Write(data);
        file.Flush(flushToDisk: true);
    }

    /// <summary>Waits until the volume's directory appears in the mount (the first access mounts it; a volume whose
    /// previous holder is still letting go is tried again at the next access).</summary>
    private static async Task AppearsAsync(MountProcess mount, string volume) =>
        await Eventually.Until(() => Directory.Exists(mount.PathOf(volume)), TimeSpan.FromSeconds(60), $"{mount.PathOf(volume)} to appear\n{mount.Output}");

    [Fact]
    public async Task Files_written_through_one_node_read_back_byte_for_byte_through_another()
    {
        var volume = await cluster.NewVolumeAsync();
        var data = new byte[3 * 1024 * 1024 + 123];
        Random.Shared.NextBytes(data);

        await using (var first = await MountAsync("first", 0))
        {
            await AppearsAsync(first, volume);
            WriteSynced(first.PathOf(volume, "data.bin"), data);
            Directory.CreateDirectory(first.PathOf(volume, "sub/deeper"));
            await File.WriteAllTextAsync(first.PathOf(volume, "sub/a.txt"), "hello, volume");
            File.Move(first.PathOf(volume, "sub/a.txt"), first.PathOf(volume, "sub/deeper/b.txt"));
            await File.WriteAllTextAsync(first.PathOf(volume, "gone.txt"), "x");
            File.Delete(first.PathOf(volume, "gone.txt"));
            File.SetUnixFileMode(first.PathOf(volume, "data.bin"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            // Not fsynced: the unmount at SIGTERM writes it back.
            await File.WriteAllTextAsync(first.PathOf(volume, "unsynced.txt"), "written back at unmount");
            // The directory lists what it mounted, and names no volume that does not exist.
            Assert.Contains(volume, Directory.GetFileSystemEntries(first.Directory).Select(Path.GetFileName));
            Assert.False(Directory.Exists(first.PathOf("0000000000000000000000000000000000000000")));
            Assert.Equal(0, await first.StopAsync());
        }
        Assert.False(Directory.Exists(Path.Combine(MountDir("first"), volume)));

        await using var second = await MountAsync("second", 1);
        await AppearsAsync(second, volume);
        Assert.Equal(data, await File.ReadAllBytesAsync(second.PathOf(volume, "data.bin")));
        Assert.Equal("hello, volume", await File.ReadAllTextAsync(second.PathOf(volume, "sub/deeper/b.txt")));
        Assert.Equal("written back at unmount", await File.ReadAllTextAsync(second.PathOf(volume, "unsynced.txt")));
        Assert.False(File.Exists(second.PathOf(volume, "sub/a.txt")));
        Assert.False(File.Exists(second.PathOf(volume, "gone.txt")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(second.PathOf(volume, "data.bin")));
        Assert.Equal(0, await second.StopAsync());
    }

    [Fact]
    public async Task A_second_read_write_attachment_is_refused_while_a_mount_holds_the_volume()
    {
        var volume = await cluster.NewVolumeAsync();
        await using var holder = await MountAsync("holder", 0);
        await AppearsAsync(holder, volume);
        await File.WriteAllTextAsync(holder.PathOf(volume, "mine.txt"), "held");

        // A writer through another node gets the volume read-only, and is told who holds it.
        var write = await Tool.QemuIo(cluster.Nodes[2]!.Nbd(volume), "write -P 0x11 0 4k");
        Assert.NotEqual(0, write.Code);
        var info = (await Tool.RunAsync("nbdinfo", "--json", cluster.Nodes[1]!.Nbd(volume))).AssertOk().Out;
        Assert.True(info.Contains("\"is_read_only\": true"), info + "\n" + write + "\n" + cluster.Nodes[1]!.Stderr[^Math.Min(4000, cluster.Nodes[1]!.Stderr.Length)..]);
        Assert.Contains($"read-only: volume {volume} is attached read-write by NBD client", info);
        // Reading is always allowed.
        (await Tool.QemuIoReadOnly(cluster.Nodes[2]!.Nbd(volume), "read 0 4k")).AssertOk();

        // A second mount of it (through another node) is refused in one sentence, and its lookup fails.
        await using var other = await MountAsync("other", 1);
        Assert.False(Directory.Exists(other.PathOf(volume)));
        // (Its stderr reaches the test a moment after the lookup failed.)
        await Eventually.Until(() => other.Output.Contains($"volume {volume} is ") && other.Output.Contains("; not mounted"),
            TimeSpan.FromSeconds(10), $"the refusal on the second mount's stderr\n{other.Output}");

        // Once the holder lets go, the next access mounts it there, with the holder's file.
        Assert.Equal(0, await holder.StopAsync());
        await AppearsAsync(other, volume);
        Assert.Equal("held", await File.ReadAllTextAsync(other.PathOf(volume, "mine.txt")));
    }

    [Fact]
    public async Task A_branch_taken_after_sync_mounts_with_the_files()
    {
        // Async: a branch of a 3-replica sync volume stays "outdated", and a flush of it (a loop device's first act)
        // waits for a durable majority that does not come (reported; not this test's subject).
        var volume = await cluster.NewVolumeAsync("async");
        var data = new byte[1024 * 1024];
        Random.Shared.NextBytes(data);
        await using var mount = await MountAsync("versions", 2);
        await AppearsAsync(mount, volume);
        await File.WriteAllBytesAsync(mount.PathOf(volume, "before.bin"), data);
        Directory.CreateDirectory(mount.PathOf(volume, "dir"));
        await File.WriteAllTextAsync(mount.PathOf(volume, "dir/note.txt"), "in the branch");
        (await Tool.RunAsync("sync", "-f", mount.PathOf(volume, "before.bin"))).AssertOk();

        // A mounted volume keeps its versions: info and branch work while it is mounted.
        var version = (await Tool.CloudFs("info", volume, "--contact", Addresses[2])).AssertOk().Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", version);
        var branch = (await Tool.CloudFs("branch", volume, "--contact", Addresses[2])).AssertOk().Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", branch);
        await File.WriteAllTextAsync(mount.PathOf(volume, "after.txt"), "not in the branch");

        await AppearsAsync(mount, branch);
        Assert.Equal(data, await File.ReadAllBytesAsync(mount.PathOf(branch, "before.bin")));
        Assert.Equal("in the branch", await File.ReadAllTextAsync(mount.PathOf(branch, "dir/note.txt")));
        Assert.False(File.Exists(mount.PathOf(branch, "after.txt")));
        Assert.Equal(0, await mount.StopAsync());
    }
}
