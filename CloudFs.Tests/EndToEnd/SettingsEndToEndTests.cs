// The real `cloudfs node` with a --config file: a wrong setting is refused before anything starts, in one sentence
// naming the key and the value, leaving no file behind.
namespace CloudFs.Tests.EndToEnd;

public sealed class SettingsEndToEndTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_wrong_setting_in_the_config_file_is_refused_naming_it_and_leaves_nothing_behind()
    {
        File.WriteAllText(_dir.File("bad.conf"), "cloudfs.scrub { rate = -4MiB }\n");
        var device = _dir.File(Path.Combine("sub", "node.log"));

        var (code, stderr) = await NodeProcess.StartExpectingFailureAsync("127.0.12.1", device, "--config", _dir.File("bad.conf"));

        Assert.Equal(2, code);
        Assert.Equal("cloudfs: the configuration is not valid: the setting cloudfs.scrub.rate = -4MiB is not a size of 0 bytes or more",
            stderr.Trim());
        Assert.False(Directory.Exists(_dir.File("sub")));
    }
}
