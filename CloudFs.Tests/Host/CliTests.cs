// The cloudfs command tree in process: help for every command, one-sentence usage errors, sizes and addresses, ls formats.
using System.CommandLine;
using System.Text.Json;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;

namespace CloudFs.Tests.Host;

public sealed class CliTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var io = new CliIo(o, e, () => Stream.Null, () => Stream.Null);
        var code = await CloudFsCli.RunAsync(args, io);
        return (code, o.ToString(), e.ToString());
    }

    public static TheoryData<string> AllCommands()
    {
        var data = new TheoryData<string>();
        void Walk(Command c, string prefix)
        {
            foreach (var sub in c.Subcommands)
            {
                var path = (prefix + " " + sub.Name).Trim();
                data.Add(path);
                Walk(sub, path);
            }
        }
        Walk(CloudFsCli.Build(new CliIo(TextWriter.Null, TextWriter.Null, () => Stream.Null, () => Stream.Null)), "");
        return data;
    }

    [Theory]
    [MemberData(nameof(AllCommands))]
    public async Task Every_command_has_help(string command)
    {
        var (code, output, _) = await Run([.. command.Split(' '), "--help"]);
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output);
        Assert.Contains(command.Split(' ')[^1], output);
    }

    [Theory]
    [InlineData("lsx", "cloudfs: unknown command 'lsx'. See 'cloudfs --help'.")]
    [InlineData("cluster shwo", "cloudfs cluster: unknown command 'shwo'. See 'cloudfs cluster --help'.")]
    public async Task An_unknown_command_is_named(string command, string expected)
    {
        var (code, _, err) = await Run(command.Split(' '));
        Assert.Equal(CloudFsCli.ExitUsage, code);
        Assert.Equal(expected, err.Trim());
    }

    [Fact]
    public async Task Help_is_a_command_too()
    {
        var (code, output, _) = await Run("help");
        Assert.Equal(0, code);
        Assert.Contains("newdisk", output);
        (code, output, _) = await Run("help", "cluster", "show");
        Assert.Equal(0, code);
        Assert.Contains("cluster show [options]", output);
    }

    [Fact]
    public void The_spec_commands_all_exist()
    {
        var names = ((IEnumerable<object[]>)AllCommands()).Select(d => (string)d[0]).ToHashSet();
        foreach (var c in new[] { "node", "nuke", "newdisk", "ls", "info", "heads", "branch", "stream", "apply", "cluster show", "cluster leader", "cluster status",
                     "cluster down-unreachable", "cluster join", "cluster leave", "cluster down", "sharding regions", "sharding stats", "scrub", "verify", "cert init", "cert issue" })
            Assert.Contains(c, names);
    }

    [Theory]
    [InlineData("node --bogus")]
    [InlineData("node --listen 1.2.3")]
    [InlineData("node --size 12Q")]
    [InlineData("node --http-port 70000")]
    [InlineData("node --host-id abc")]
    [InlineData("node --log-level verbose")]
    [InlineData("node --seeds 127.0.0.2:x")]
    [InlineData("newdisk zero")]
    [InlineData("newdisk 0")]
    [InlineData("newdisk 1 --mode fast")]
    [InlineData("info not/a/name")]
    [InlineData("scrub -dash-first")]
    [InlineData("verify")]
    [InlineData("verify not@name --deep")]
    [InlineData("rm not/a/name")]
    [InlineData("resize db 1000")]
    [InlineData("trash restore")]
    [InlineData("newdisk 1 --name 0123456789abcdef0123456789abcdef01234567")]
    [InlineData("stream")]
    [InlineData("heads --http 300.1.1.1")]
    [InlineData("cluster")]
    public async Task Bad_usage_is_one_sentence_on_stderr_and_exit_2(string args)
    {
        var (code, output, error) = await Run(args.Split(' '));
        Assert.Equal(CloudFsCli.ExitUsage, code);
        Assert.Equal("", output);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("cloudfs", error);
    }

    [Fact]
    public async Task A_node_that_is_not_running_gives_a_clear_error_for_http_commands()
    {
        // 127.0.0.9:1 has nothing listening.
        var (code, _, error) = await Run("heads", "--http", "127.0.0.9:1");
        Assert.Equal(1, code);
        Assert.Contains("cannot reach the node", error);
    }

    [Fact]
    public async Task Node_on_a_busy_port_refuses_before_touching_the_device()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse("127.0.0.20"), 8090);
        listener.Start();
        var dir = Directory.CreateTempSubdirectory("cloudfs-cli-");
        try
        {
            var device = Path.Combine(dir.FullName, "sub", "node.log");
            var (code, output, error) = await Run("node", "--listen", "127.0.0.20", "--device", device);
            Assert.Equal(1, code);
            Assert.Equal("", output);
            Assert.Equal("cloudfs: the HTTP port 127.0.0.20:8090 is already in use (another node running?)", error.Trim());
            Assert.False(Directory.Exists(Path.Combine(dir.FullName, "sub")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Nuke_of_a_missing_path_fails_with_one_sentence()
    {
        var (code, _, error) = await Run("nuke", "/nonexistent/cloudfs.log");
        Assert.Equal(1, code);
        Assert.Equal("cloudfs: /nonexistent/cloudfs.log does not exist", error.Trim());
    }

    [Theory]
    [InlineData("4096", 4096L)]
    [InlineData("8G", 8L << 30)]
    [InlineData("512M", 512L << 20)]
    [InlineData("1T", 1L << 40)]
    [InlineData("64KiB", 64L << 10)]
    [InlineData("2gb", 2L << 30)]
    public void Sizes_parse_with_binary_suffixes(string text, long expected)
    {
        Assert.True(SizeParser.TryParse(text, out var bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("G")]
    [InlineData("1.5G")]
    [InlineData("-1")]
    [InlineData("9999999999P")]
    public void Bad_sizes_are_refused(string text) => Assert.False(SizeParser.TryParse(text, out _));

    private static readonly VolumeSummary Sample = new(new string('1', 40), 8L << 30, VolumeMode.Async, null, [new string('2', 40), new string('3', 40)], new string('4', 40));

    [Fact]
    public void Ls_line_has_the_nine_fields_in_order_with_dashes_for_what_is_not_there()
    {
        var fields = VolumeListFormat.Line(Sample).Split(' ');
        Assert.Equal([Sample.Id, "8589934592", "async", "-", $"{Sample.Replicas[0]},{Sample.Replicas[1]}", Sample.Version, "-", "healthy", "-"], fields);
        var branch = VolumeListFormat.Line(Sample with { Health = "damaged", Parent = new string('5', 40) }).Split(' ');
        Assert.Equal(["-", "damaged", new string('5', 40)], branch[6..]);
    }

    [Fact]
    public void Ls_json_has_the_nine_named_fields()
    {
        using var json = JsonDocument.Parse(VolumeListFormat.Json([Sample with { Primary = new string('2', 40), Mode = VolumeMode.Sync }]));
        var v = json.RootElement[0];
        Assert.Equal(["id", "size", "mode", "primary", "replicas", "version", "name", "health", "parent", "health_detail", "current_replicas", "resync_percent", "lag", "protected"], v.EnumerateObject().Select(p => p.Name));
        Assert.Equal("healthy", v.GetProperty("health").GetString());
        Assert.Equal(JsonValueKind.Null, v.GetProperty("parent").ValueKind);
        Assert.Equal(8L << 30, v.GetProperty("size").GetInt64());
        Assert.Equal("sync", v.GetProperty("mode").GetString());
        Assert.Equal(2, v.GetProperty("replicas").GetArrayLength());
    }

    [Fact]
    public void A_volume_in_the_trash_has_trashed_in_its_json_and_reads_back_the_same()
    {
        var trashed = Sample with { Name = "db", Parent = new string('5', 40), Health = "degraded", TrashedAtUnixMs = 1_700_000_000_000 };
        var text = JsonSerializer.Serialize(trashed, ManagementJson.Options);
        using var json = JsonDocument.Parse(text);
        Assert.Equal(["id", "size", "mode", "primary", "replicas", "version", "name", "health", "parent", "health_detail", "current_replicas", "resync_percent", "lag", "protected", "trashed"], json.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal("2023-11-14T22:13:20Z", json.RootElement.GetProperty("trashed").GetString());
        var back = JsonSerializer.Deserialize<VolumeSummary>(text, ManagementJson.Options)!;
        Assert.Equal((trashed.Id, trashed.Name, trashed.Parent, trashed.Health, trashed.TrashedAtUnixMs),
            (back.Id, back.Name, back.Parent, back.Health, back.TrashedAtUnixMs));
        Assert.Equal(trashed.Replicas, back.Replicas);
        Assert.Equal("db", LifecycleCommands.TrashLine(back).Split(' ')[1]);
    }

    [Fact]
    public void Cluster_show_prints_a_line_per_member_then_the_count()
    {
        var lines = ClusterCommands.ShowLines(new ClusterMembers(
            [new MemberLine("akka.tcp://cloudfs@127.0.0.1:4053", ["cloudfs"], "Up", "Reachable", new string('a', 40)),
             new MemberLine("akka.tcp://cloudfs@127.0.0.2:4053", [], "Joining", "Unreachable", "")], null, "x")).ToList();
        Assert.Equal($"akka.tcp://cloudfs@127.0.0.1:4053 cloudfs Up Reachable {new string('a', 40)}", lines[0]);
        Assert.Equal("akka.tcp://cloudfs@127.0.0.2:4053 - Joining Unreachable -", lines[1]);
        Assert.Equal("Count: 2", lines[2]);
    }

    [Theory]
    [InlineData("127.0.0.5", "127.0.0.5", 8090)]
    [InlineData("127.0.0.5:9000", "127.0.0.5", 9000)]
    [InlineData("127.0.0.5:4053", "127.0.0.5", 8090)]
    [InlineData("node1", "node1", 8090)]
    [InlineData("storage-2.example.com:8443", "storage-2.example.com", 8443)]
    [InlineData("[::1]:9000", "::1", 9000)]
    [InlineData("::1", "::1", 8090)]
    public void A_contact_is_a_host_name_or_ip_with_the_http_port_and_the_akka_port_means_http(string text, string host, int port)
    {
        Assert.True(NodeContact.TryParse(text, out var contact));
        Assert.Equal(new NodeContact(host, port), contact);
    }

    [Theory]
    [InlineData("1.2.3")]
    [InlineData("300.1.1.1")]
    [InlineData("node1:0")]
    [InlineData("node1:70000")]
    [InlineData("no_underscores")]
    [InlineData("-bad")]
    [InlineData("[::1")]
    [InlineData("")]
    public void A_contact_that_is_not_an_address_is_refused(string text) => Assert.False(NodeContact.TryParse(text, out _));

    [Fact]
    public async Task A_bad_contact_is_a_usage_error_and_a_dead_one_is_one_sentence_naming_it()
    {
        var (code, _, error) = await Run("ls", "--contact", "1.2.3");
        Assert.Equal(CloudFsCli.ExitUsage, code);
        Assert.Contains("'1.2.3' is not a node address", error);
        // 127.0.17.254 (this suite's range) has nothing listening on port 1.
        (code, var output, error) = await Run("status", "--contact", "127.0.17.254:1");
        Assert.Equal((1, ""), (code, output));
        Assert.Equal("cloudfs: cannot reach the node at 127.0.17.254:1 (connection refused); is `cloudfs node` running there (--contact HOST[:HTTP-PORT], or $CLOUDFS_CONTACT)?", error.Trim());
    }
}
