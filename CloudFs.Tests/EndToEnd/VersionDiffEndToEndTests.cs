// Changed-block tracking with the real executable on one node (127.0.39.1): `cloudfs diff VOLUME FROM [TO] [--json]`
// and GET /volumes/VOLUME/diff over a volume written in three rounds, and its refusals.
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class VersionDiffEndToEndTests : IAsyncLifetime
{
    private const int K = 1024;
    private readonly OneNode _one = new("127.0.39.1", "--size", "512M");
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };
    private NodeProcess Node => _one.Node;

    public Task InitializeAsync() => _one.InitializeAsync();

    public async Task DisposeAsync()
    {
        await _one.DisposeAsync();
        _http.Dispose();
    }

    private async Task Write(string volume, long offset, int length, byte fill)
    {
        using var put = new HttpRequestMessage(HttpMethod.Put, $"{Node.HttpBase}/volumes/{volume}") { Content = new ByteArrayContent(Enumerable.Repeat(fill, length).ToArray()) };
        put.Content.Headers.ContentRange = new ContentRangeHeaderValue(offset, offset + length - 1);
        using var response = await _http.SendAsync(put);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
    }

    private async Task<string> Version(string volume) => (await _one.Cli("info", volume)).AssertOk().Out.Trim();

    [Fact]
    public async Task Diff_prints_the_ranges_written_after_each_version_as_text_and_json()
    {
        var volume = await Node.NewDiskAsync("64M");
        await Write(volume, 0, 64 * K, 1);
        var v1 = await Version(volume);
        await Write(volume, 1 << 20, 8 * K, 2);
        await Write(volume, (1 << 20) + 8 * K, 8 * K, 0);
        var v2 = await Version(volume);
        await Write(volume, 32 << 20, 4 * K, 3);
        var v3 = await Version(volume);

        var text = (await _one.Cli("diff", volume, v1)).AssertOk().Out;
        Assert.Equal($"{1 << 20} {16 * K}\n{32 << 20} {4 * K}\ntotal {20 * K} bytes in 2 ranges\n", text);
        Assert.Equal($"{32 << 20} {4 * K}\ntotal {4 * K} bytes in 1 ranges\n", (await _one.Cli("diff", volume, v2)).AssertOk().Out);

        var json = JsonDocument.Parse((await _one.Cli("diff", volume, v1, v2, "--json")).AssertOk().Out).RootElement;
        Assert.Equal(v1, json.GetProperty("from").GetString());
        Assert.Equal(v2, json.GetProperty("to").GetString());
        var range = Assert.Single(json.GetProperty("ranges").EnumerateArray());
        Assert.Equal(1 << 20, range.GetProperty("offset").GetInt64());
        Assert.Equal(16 * K, range.GetProperty("length").GetInt64());
        Assert.Equal(16 * K, json.GetProperty("bytes").GetInt64());

        // The same over HTTP, TO defaulting to the current version.
        var http = JsonDocument.Parse(await _http.GetStringAsync($"{Node.HttpBase}/volumes/{volume}/diff?from={v3}")).RootElement;
        Assert.Equal(v3, http.GetProperty("to").GetString());
        Assert.Empty(http.GetProperty("ranges").EnumerateArray());
        Assert.Equal(0, http.GetProperty("bytes").GetInt64());
    }

    [Fact]
    public async Task Diff_refuses_an_unknown_version_and_one_of_another_volume_naming_it()
    {
        var a = await Node.NewDiskAsync("16M");
        var b = await Node.NewDiskAsync("16M");
        var nowhere = new string('7', 40);
        var unknown = await _one.Cli("diff", a, nowhere);
        Assert.NotEqual(0, unknown.Code);
        Assert.Contains(nowhere, unknown.Err);
        var other = await _one.Cli("diff", a, b);
        Assert.NotEqual(0, other.Code);
        Assert.Contains($"{b} is not in the history of volume {a}", other.Err);
        var bad = await _one.Cli("diff", a, "nonsense");
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("'nonsense' is not a version id", bad.Err);
        // The operator's mistakes are refused to them, not warned about in the node's log.
        Assert.DoesNotContain("management request", Node.Warnings());
    }
}
