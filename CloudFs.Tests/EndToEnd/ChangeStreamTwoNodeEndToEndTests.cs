// The HTTP changes stream on two joined nodes (127.0.55.4, 127.0.55.5), the volume on one of them: the node that does
// not hold it answers the same stream as the one that does (it asks the volume's primary for the ranges and reads the
// version through the volume's actor), TO defaulting to the current version there too, across a shrink (the size at
// TO in the header, nothing sent past it).
namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class ChangeStreamTwoNodeEndToEndTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private NodeProcess? _first, _second;

    public async Task InitializeAsync()
    {
        _first = await NodeProcess.StartAsync("127.0.55.4", _dir.File("first.log"), "--size", "1G");
        _second = await NodeProcess.StartAsync("127.0.55.5", _dir.File("second.log"), "--size", "1G", "--seeds", "127.0.55.4");
    }

    public async Task DisposeAsync()
    {
        if (_second is not null) await _second.DisposeAsync();
        if (_first is not null) await _first.DisposeAsync();
        _dir.Dispose();
    }

    private static async Task<byte[]> ChangesAsync(NodeProcess node, string volume, string from, string? to = null)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        using var response = await http.GetAsync($"{node.HttpBase}/volumes/{volume}/changes?from={from}{(to is null ? "" : "&to=" + to)}");
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.True(response.IsSuccessStatusCode, $"{node.Listen}: {(int)response.StatusCode} {System.Text.Encoding.UTF8.GetString(bytes)}");
        return bytes;
    }

    [Fact]
    public async Task The_node_that_does_not_hold_the_volume_streams_the_same_changes_as_the_one_that_does()
    {
        var (first, second) = (_first!, _second!);
        var volume = await first.NewDiskAsync("16M");
        var (holder, other) = (await first.HeadsAsync()).Contains(volume) ? (first, second) : (second, first);
        (await Tool.RunAsync("qemu-io", "-f", "raw", holder.Nbd(volume), "-c", "write -P 0x61 0 1M")).AssertOk();
        var v1 = (await Tool.CloudFs(["info", volume, "--contact", holder.Listen])).AssertOk().Out.Trim();
        (await Tool.RunAsync("qemu-io", "-f", "raw", holder.Nbd(volume), "-c", "write -P 0x62 512 512", "-c", "write -P 0x63 2M 4k",
            "-c", "write -z 3M 64k", "-c", "write -P 0x64 12M 1M")).AssertOk();
        (await Tool.CloudFs(["resize", volume, "8M", "--allow-shrink", "--contact", holder.Listen])).AssertOk();
        var v2 = (await Tool.CloudFs(["info", volume, "--contact", holder.Listen])).AssertOk().Out.Trim();

        var held = await ChangesAsync(holder, volume, v1, v2);
        var stream = ChangeStream.Parse(held);
        Assert.Equal(8L << 20, stream.SizeBytes);
        Assert.Equal([(512L, 512L), (2L << 20, 4096L), (3L << 20, 65536L)], stream.Ranges());
        Assert.Equal(held, await ChangesAsync(other, volume, v1, v2));
        // TO not named: the current version, resolved by the volume's primary.
        Assert.Equal(held, await ChangesAsync(other, volume, v1));
    }
}
