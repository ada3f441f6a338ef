// Every management command of the CLI (those that ask a node's management API over HTTP) takes --tls DIR and reads the
// directory before it connects: a directory that is not usable is refused with one sentence naming it.
namespace CloudFs.Tests.Host;

public sealed class ManagementTlsOptionTests
{
    public static TheoryData<string> ManagementCommands() => new()
    {
        "newdisk 1", "ls", "info " + new string('a', 40), "branch " + new string('b', 40), "scrub", "verify " + new string('c', 40),
        "cluster show", "cluster leader", "cluster status", "cluster down-unreachable", "cluster join 127.0.0.9", "cluster leave 127.0.0.9",
        "cluster down 127.0.0.9", "sharding regions", "sharding stats",
    };

    [Theory]
    [MemberData(nameof(ManagementCommands))]
    public async Task A_management_command_takes_tls_and_refuses_a_directory_that_does_not_exist(string command)
    {
        var missing = Path.Combine(Path.GetTempPath(), "cloudfs-no-such-tls-" + Guid.NewGuid().ToString("N"));
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CloudFs.Host.Cli.CloudFsCli.RunAsync([.. command.Split(' '), "--contact", "127.0.0.9:1", "--tls", missing],
            new CloudFs.Host.Cli.CliIo(o, e, () => Stream.Null, () => Stream.Null));
        Assert.Equal(1, code);
        var line = Assert.Single(e.ToString().Trim().Split('\n'));
        Assert.StartsWith($"cloudfs: --tls {missing}: the certificate directory {missing} does not exist", line);
    }
}
