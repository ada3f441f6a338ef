// Three real nodes on 127.0.5.1-3, all with --tls, so remoting runs over mutual TLS: the CLI without a certificate is
// refused (newdisk, cluster down) with one sentence naming --tls and changes nothing; with the operator's directory
// `newdisk 3 --tls` and `ls --tls` work, qemu-io and nbdinfo write and read over NBD with TLS, and after kill -9 of the
// primary the volume is served again by a survivor with every acknowledged write.
using System.Text.Json;
using CloudFs.BlockDevice;
using CloudFs.Tests.Nbd;
using CloudFs.Tests.Security;
using Xunit.Abstractions;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class RemotingTlsEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.5.1", "127.0.5.2", "127.0.5.3"];
    private static readonly string Seeds = string.Join(",", Addresses);
    private readonly TempDir _dir = new();
    private readonly TestAuthority _authority = new();
    private readonly Id160[] _hosts = [Id160.Random(), Id160.Random(), Id160.Random()];
    private readonly NodeProcess?[] _nodes = new NodeProcess?[3];
    private string _operator = "";

    public async Task InitializeAsync()
    {
        try
        {
            _operator = _authority.Operator("admin");
            await ProcessCluster.StartAllAsync(_nodes, StartAsync);
            await ProcessCluster.WaitForMembersAsync(_nodes, Addresses, "--tls", _operator);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private Task<NodeProcess> StartAsync(int i) =>
        NodeProcess.StartAsync(Addresses[i], _dir.File($"node{i}.log"), "--seeds", Seeds, "--size", "512M",
            "--tls", _authority.Node($"node{i}", _hosts[i], Addresses[i]));

    public async Task DisposeAsync()
    {
        await ProcessCluster.StopAllAsync(_nodes);
        _authority.Dispose();
        _dir.Dispose();
    }

    private string[] Operator(params string[] args) => [.. args, "--tls", _operator];

    private async Task<JsonElement[]> List(string contact) =>
        JsonDocument.Parse((await Tool.CloudFs(Operator("ls", "--json", "--contact", contact))).AssertOk().Out).RootElement.EnumerateArray().ToArray();

    private string[] QemuTls(int node, string volume, bool readOnly, params string[] commands) =>
    [
        .. readOnly ? new[] { "-r" } : [],
        "--object", $"tls-creds-x509,dir={_operator},endpoint=client,id=t",
        "--image-opts", $"driver=nbd,host={Addresses[node]},port=10809,export={volume},tls-creds=t",
        .. commands.SelectMany(c => new[] { "-c", c }),
    ];

    [Fact]
    public async Task With_tls_the_cli_needs_a_certificate_and_a_3_replica_volume_is_served_over_tls_and_survives_kill_9_of_its_primary()
    {
        // Without a certificate: refused, saying what is missing, and nothing happens.
        var refused = await Tool.CloudFs("newdisk", "3", "--size", "64M", "--contact", Addresses[0]);
        output.WriteLine($"newdisk without --tls: exit {refused.Code}: {refused.Err.Trim()}");
        Assert.NotEqual(0, refused.Code);
        Assert.Contains("--tls", refused.Err);
        Assert.Single(refused.Err.Trim().Split('\n'));
        var down = await Tool.CloudFs("cluster", "down", Addresses[2], "--contact", Addresses[0]);
        Assert.NotEqual(0, down.Code);
        Assert.Contains("--tls", down.Err);
        Assert.Empty(await List(Addresses[1]));
        Assert.Contains("Count: 3", (await Tool.CloudFs(Operator("cluster", "show", "--contact", Addresses[1]))).AssertOk().Out);
        Assert.DoesNotContain("Down", (await Tool.CloudFs(Operator("cluster", "show", "--contact", Addresses[1]))).Out);

        // With the operator's directory: newdisk 3 and ls over TLS.
        var created = (await Tool.CloudFs(Operator("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", Addresses[0]))).AssertOk();
        var volume = created.Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", volume);
        var listed = Assert.Single(await List(Addresses[1]), v => v.GetProperty("id").GetString() == volume);
        var primary = Array.FindIndex(_nodes, n => n!.HostId == listed.GetProperty("primary").GetString());
        Assert.InRange(primary, 0, 2);

        // NBD over TLS, with the operator's directory as qemu and libnbd read it.
        (await ExternalTool.RunAsync("qemu-io", QemuTls(primary, volume, false, "write -P 0x5a 0 1M", "write -P 0x6b 4M 512k", "flush"), TimeSpan.FromSeconds(120))).AssertSuccess();
        var info = (await ExternalTool.RunAsync("nbdinfo", [$"nbds://{Addresses[primary]}/{volume}?tls-certificates={_operator}"], TimeSpan.FromSeconds(120))).AssertSuccess();
        Assert.Contains("67108864", info.Stdout);
        (await ExternalTool.RunAsync("qemu-io", QemuTls(primary, volume, true, "read -P 0x5a 0 1M", "read -P 0x6b 4M 512k"), TimeSpan.FromSeconds(120))).AssertSuccess();

        // kill -9 of the primary: a survivor serves the volume again, writable, with what was acknowledged.
        await _nodes[primary]!.KillAsync();
        await _nodes[primary]!.DisposeAsync();
        _nodes[primary] = null;
        var survivor = Enumerable.Range(0, 3).First(i => i != primary);
        CloudFs.Tests.Nbd.ToolResult last = null!;
        await Eventually.Until(async () => (last = await ExternalTool.RunAsync("qemu-io", QemuTls(survivor, volume, false, "write -P 0x7c 8M 64k", "flush"), TimeSpan.FromSeconds(120))).ExitCode == 0,
            TimeSpan.FromSeconds(60), () => $"a write through {Addresses[survivor]} after the failover (last: {last?.Stderr})");
        (await ExternalTool.RunAsync("qemu-io", QemuTls(survivor, volume, false, "read -P 0x5a 0 1M", "read -P 0x6b 4M 512k", "read -P 0x7c 8M 64k"), TimeSpan.FromSeconds(120))).AssertSuccess();
        var after = Assert.Single(await List(Addresses[survivor]), v => v.GetProperty("id").GetString() == volume);
        Assert.NotEqual(_hosts[primary].ToString(), after.GetProperty("primary").GetString());
        // Every refused connection of this run was logged in one line, without a stack trace.
        Assert.All(_nodes.Where(n => n is not null), n => Assert.DoesNotContain("TLS handshake failed", n!.Stderr));
    }
}
