// The key file: a new volume's secret is one appended line (creates that append together share one sync), every
// secret is there after a reload, a later line replaces an earlier one, and a torn last line (a crash during an
// append, never acknowledged) is ignored and dropped instead of refusing the host.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Tests.Engine;

public sealed class KeyFileTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string Path => _dir.File("host.keys");

    public void Dispose() => _dir.Dispose();

    private static byte[] Secret(int i) => Enumerable.Range(0, VersionChain.SecretSize).Select(b => (byte)(b + i)).ToArray();

    [Fact]
    public async Task Secrets_added_concurrently_are_appended_one_line_each_and_all_read_back()
    {
        var volumes = Enumerable.Range(0, 400).Select(_ => Id160.Random()).ToArray();
        string inode;
        using (var keys = KeyFile.Load(Path))
        {
            _ = keys.HostKey;
            inode = (await Tool.RunAsync("stat", "-c", "%i", Path)).AssertOk().Out;
            await Task.WhenAll(volumes.Select((v, i) => Task.Run(() => keys.Add(v, Secret(i)))));
        }
        // The header and the host key, then one appended line per volume, in the same file: not a rewrite per secret.
        Assert.Equal(inode, (await Tool.RunAsync("stat", "-c", "%i", Path)).AssertOk().Out);
        Assert.Equal(2 + volumes.Length, File.ReadAllLines(Path).Length);
        using var again = KeyFile.Load(Path);
        for (var i = 0; i < volumes.Length; i++) Assert.Equal(Secret(i), again.Get(volumes[i]));
    }

    [Fact]
    public void A_later_secret_of_a_volume_replaces_the_earlier_one_after_a_reload()
    {
        var v = Id160.Random();
        using (var keys = KeyFile.Load(Path))
        {
            keys.Add(v, Secret(1));
            keys.Add(v, Secret(2));
        }
        using var again = KeyFile.Load(Path);
        Assert.Equal(Secret(2), again.Get(v));
    }

    [Fact]
    public void A_torn_last_line_is_ignored_and_dropped_so_later_appends_read_back()
    {
        var a = Id160.Random();
        var b = Id160.Random();
        using (var keys = KeyFile.Load(Path))
        {
            keys.Add(Id160.Random(), Secret(0));
            keys.Add(a, Secret(1));
        }
        File.AppendAllText(Path, b + " 0a1b2c");
        using (var keys = KeyFile.Load(Path))
        {
            Assert.Equal(Secret(1), keys.Get(a));
            Assert.Null(keys.Get(b));
            keys.Add(b, Secret(2));
        }
        using var again = KeyFile.Load(Path);
        Assert.Equal(Secret(1), again.Get(a));
        Assert.Equal(Secret(2), again.Get(b));
    }

    [Fact]
    public void A_malformed_line_before_the_last_still_refuses_the_file()
    {
        using (var keys = KeyFile.Load(Path)) keys.Add(Id160.Random(), Secret(0));
        File.AppendAllText(Path, "not a key line\n" + Id160.Random() + " " + Convert.ToHexStringLower(Secret(3)) + "\n");
        Assert.Throws<DeviceException>(() => KeyFile.Load(Path));
    }
}
