// `cloudfs cert` in process: init refuses an existing authority, issue writes a directory ClusterTls loads (a node's
// with its host id, an operator's without), and bad combinations of flags are usage errors that write nothing.
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;

namespace CloudFs.Tests.Host;

public sealed class CertCommandsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cloudfs-cert-cli-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CloudFsCli.RunAsync(args, new CliIo(o, e, () => Stream.Null, () => Stream.Null));
        return (code, o.ToString(), e.ToString());
    }

    private string In(string name) => Path.Combine(_root, name);

    [Fact]
    public async Task Init_then_issue_makes_directories_that_load_as_the_host_and_the_operator_they_name()
    {
        Assert.Equal(0, (await Run("cert", "init", In("ca"))).Code);
        var host = Id160.Random();
        var issued = await Run("cert", "issue", In("ca"), "--host-id", host.ToString(), "--addr", "127.0.4.1,node1.example", "--out", In("node1"));
        Assert.True(issued.Code == 0, issued.Err);
        Assert.Contains($"host {host} (127.0.4.1, node1.example)", issued.Out);
        Assert.Equal(0, (await Run("cert", "issue", In("ca"), "--client", "admin", "--out", In("admin"))).Code);

        using var node = ClusterTls.Load(In("node1"));
        using var admin = ClusterTls.Load(In("admin"));
        Assert.Equal(host, node.HostId);
        Assert.Equal("admin", admin.Identity.OperatorName);
        Assert.Equal("admin", node.Validate(admin.ClientCertificate, TlsPeerRole.Client).OperatorName);

        var shown = await Run("cert", "show", In("node1"));
        Assert.StartsWith($"host {host} (127.0.4.1, node1.example), issued by 'CN=CloudFS cluster authority ", shown.Out);
    }

    [Fact]
    public async Task Init_refuses_a_directory_that_holds_an_authority_and_leaves_it_as_it_was()
    {
        Assert.Equal(0, (await Run("cert", "init", In("ca"))).Code);
        var key = File.ReadAllText(Path.Combine(In("ca"), "ca-key.pem"));

        var again = await Run("cert", "init", In("ca"));
        Assert.Equal(1, again.Code);
        Assert.Contains("already holds a cluster authority", again.Err);
        Assert.Equal(key, File.ReadAllText(Path.Combine(In("ca"), "ca-key.pem")));
    }

    [Theory]
    [InlineData("--out", "x")] // neither a host nor an operator
    [InlineData("--host-id", "0123456789abcdef0123456789abcdef01234567", "--out", "x")] // a node without addresses
    [InlineData("--client", "admin", "--host-id", "0123456789abcdef0123456789abcdef01234567", "--addr", "127.0.0.1", "--out", "x")]
    [InlineData("--client", "admin", "--addr", "127.0.0.1", "--out", "x")]
    [InlineData("--host-id", "nothex", "--addr", "127.0.0.1", "--out", "x")]
    [InlineData("--host-id", "0123456789abcdef0123456789abcdef01234567", "--addr", "127.0.0.1")] // no --out
    public async Task Issue_with_a_wrong_combination_of_flags_is_a_usage_error_that_writes_nothing(params string[] flags)
    {
        Assert.Equal(0, (await Run("cert", "init", In("ca"))).Code);
        var result = await Run(["cert", "issue", In("ca"), .. flags.Select(f => f == "x" ? In("x") : f)]);
        Assert.Equal(CloudFsCli.ExitUsage, result.Code);
        Assert.StartsWith("cloudfs cert issue: ", result.Err);
        Assert.False(Directory.Exists(In("x")));
    }

    [Fact]
    public async Task Issue_refuses_a_mistyped_address_or_an_unknown_authority_and_writes_nothing()
    {
        Assert.Equal(0, (await Run("cert", "init", In("ca"))).Code);
        var host = Id160.Random().ToString();

        var typo = await Run("cert", "issue", In("ca"), "--host-id", host, "--addr", "10.0.3", "--out", In("x"));
        Assert.Equal(1, typo.Code);
        Assert.Contains("'10.0.3' is neither an IP address nor a host name", typo.Err);
        var nowhere = await Run("cert", "issue", In("nope"), "--host-id", host, "--addr", "10.0.0.3", "--out", In("x"));
        Assert.Equal(1, nowhere.Code);
        Assert.Contains("cloudfs cert init", nowhere.Err);
        Assert.False(Directory.Exists(In("x")));
    }
}
