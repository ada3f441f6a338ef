// Two nodes joined by --seeds: one cluster, a volume replicated on both, and HTTP writes sent to the primary.
using System.Net;
using System.Net.Http.Headers;

namespace CloudFs.Tests.EndToEnd;

public sealed class JoinedNodes : IAsyncLifetime
{
    internal TempDir Dir { get; } = new();
    internal NodeProcess First { get; private set; } = null!;
    internal NodeProcess Second { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        First = await NodeProcess.StartAsync("127.0.0.21", Dir.File("first.log"));
        Second = await NodeProcess.StartAsync("127.0.0.22", Dir.File("second.log"), "--seeds", "127.0.0.21");
    }

    public async Task DisposeAsync()
    {
        if (Second is not null) await Second.DisposeAsync();
        if (First is not null) await First.DisposeAsync();
        Dir.Dispose();
    }
}

public sealed class ClusterEndToEndTests(JoinedNodes nodes) : IClassFixture<JoinedNodes>
{
    [Fact]
    public async Task Cluster_show_on_either_node_lists_both_members()
    {
        foreach (var contact in new[] { nodes.First.Listen, nodes.Second.Listen })
        {
            var show = (await Tool.CloudFs("cluster", "show", "--contact", contact)).AssertOk();
            Assert.Contains("Count: 2", show.Out);
            Assert.Contains(nodes.First.HostId, show.Out);
            Assert.Contains(nodes.Second.HostId, show.Out);
        }
    }

    [Fact]
    public async Task A_put_to_the_replica_redirects_to_the_primary_and_the_write_reaches_both()
    {
        var created = (await Tool.CloudFs("newdisk", "2", "--size", "16M", "--contact", nodes.First.Listen)).AssertOk();
        var volume = created.Out.Trim();
        Assert.Contains(nodes.First.HostId, created.Err);
        Assert.Contains(nodes.Second.HostId, created.Err);

        var ls = (await Tool.CloudFs("ls", "--contact", nodes.Second.Listen)).AssertOk();
        var fields = ls.Out.Split('\n').Select(l => l.Split(' ')).Single(f => f[0] == volume);
        var primary = fields[3] == nodes.First.HostId ? nodes.First : nodes.Second;
        var replica = primary == nodes.First ? nodes.Second : nodes.First;
        Assert.Equal(2, fields[4].Split(',').Length);

        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        using var put = new HttpRequestMessage(HttpMethod.Put, $"{replica.HttpBase}/volumes/{volume}") { Content = new ByteArrayContent(new byte[4096]) };
        put.Content.Headers.ContentRange = new ContentRangeHeaderValue(0, 4095);
        using var redirect = await http.SendAsync(put);
        Assert.Equal(HttpStatusCode.TemporaryRedirect, redirect.StatusCode);
        Assert.Equal($"{primary.HttpBase}/volumes/{volume}", redirect.Headers.Location!.ToString());

        // curl follows the redirect with the same method and body, as an operator would.
        var file = nodes.Dir.File($"{volume[..8]}.bin");
        await File.WriteAllBytesAsync(file, Enumerable.Repeat((byte)0x6d, 4096).ToArray());
        (await Tool.RunAsync("curl", "-sS", "--fail-with-body", "-L", "-T", file, "-H", "Content-Range: bytes 0-4095/*", $"{replica.HttpBase}/volumes/{volume}")).AssertOk();
        (await Tool.QemuIoReadOnly(primary.Nbd(volume), "read -P 0x6d 0 4k")).AssertOk();
    }
}
