// docs/BACKUP.md's recipe with the HTTP changes stream, on one real node (127.0.55.3): a volume written in three rounds
// (scattered 512-byte and 4 KiB writes, overwrites, zeroes, trims), a full backup of V1 over NBD, then two incrementals
// through GET /volumes/VOLUME/changes restore an image qemu-img compare finds identical to V3, the stream's ranges
// being `cloudfs diff`'s; a stream whose TO is the current version reads as of it while writes go on.
using System.Text.Json;
using System.Text.RegularExpressions;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class ChangeStreamEndToEndTests : IAsyncLifetime
{
    private readonly OneNode _one = new("127.0.55.3", "--size", "1G");
    private NodeProcess Node => _one.Node;

    public Task InitializeAsync() => _one.InitializeAsync();

    public Task DisposeAsync() => _one.DisposeAsync();

    private async Task<string> Version(string volume) => (await _one.Cli("info", volume)).AssertOk().Out.Trim();

    private static async Task QemuIo(string uri, IEnumerable<string> commands)
    {
        var result = (await Tool.RunAsync("qemu-io", ["-f", "raw", uri, .. commands.SelectMany(c => new[] { "-c", c })], TimeSpan.FromSeconds(300))).AssertOk();
        Assert.DoesNotContain("Pattern verification failed", result.Out);
    }

    private static Task<ToolResult> Backup(params string[] args) =>
        Tool.RunAsync("/usr/bin/python3", [Path.Combine(Repo.Root, "scripts", "cloudfs-backup"), .. args], TimeSpan.FromSeconds(300));

    private static IEnumerable<(long Offset, long Length)> DiffRanges(string json) =>
        JsonDocument.Parse(json).RootElement.GetProperty("ranges").EnumerateArray().Select(r => (r.GetProperty("offset").GetInt64(), r.GetProperty("length").GetInt64()));

    /// <summary>One round: scattered writes of 512 bytes and of 4 KiB at offsets of its own, plus <paramref name="more"/>.</summary>
    private static IEnumerable<string> Round(int seed, byte pattern, params string[] more)
    {
        var random = new Random(seed);
        for (var i = 0; i < 64; i++) yield return $"write -P {pattern} {random.Next(0, 64 << 11) * 512L} 512";
        for (var i = 0; i < 32; i++) yield return $"write -P {pattern + 1} {random.Next(0, 64 << 8) * 4096L} 4k";
        foreach (var m in more) yield return m;
    }

    private async Task<ChangeStream> StreamAsync(string volume, string from, string? to = null)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        using var response = await http.GetAsync($"{Node.HttpBase}/volumes/{volume}/changes?from={from}{(to is null ? "" : "&to=" + to)}");
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {System.Text.Encoding.UTF8.GetString(bytes)}");
        return ChangeStream.Parse(bytes);
    }

    [Fact]
    public async Task A_full_backup_over_nbd_and_two_incrementals_over_the_changes_stream_restore_the_third_version()
    {
        var volume = await Node.NewDiskAsync("64M");
        var nbd = Node.Nbd(volume);
        await QemuIo(nbd, Round(1, 0x10, "write -P 0x1f 8M 4M"));
        var v1 = await Version(volume);
        var image = _one.Dir.File("backup.img");
        (await Backup("full", $"{nbd}@{v1}", image)).AssertOk();

        // Overwrites (of round 1's places too), zeroes and trims.
        await QemuIo(nbd, Round(2, 0x20, "write -P 0x2a 8M 512", "write -P 0x2b 9M 64k", "write -z 10M 128k", "discard 11M 1M", "write -P 0x2c 63M 1M"));
        var v2 = await Version(volume);
        await QemuIo(nbd, Round(3, 0x30, "write -z 8M 4k", "discard 63M 512k", "write -P 0x3a 9M 512", "write -P 0x3b 30M 3M"));
        var v3 = await Version(volume);

        var first = (await Backup("incremental", $"{Node.HttpBase}/{volume}@{v2}", v1, image)).AssertOk();
        var diff12 = (await _one.Cli("diff", volume, v1, v2, "--json")).AssertOk().Out;
        Assert.Contains($"incremental: {JsonDocument.Parse(diff12).RootElement.GetProperty("bytes").GetInt64()} bytes", first.Out);
        // Without @VERSION: the current one, V3 (nothing was written after it).
        var second = (await Backup("incremental", $"{Node.HttpBase}/{volume}", v2, image)).AssertOk();
        Assert.Contains($"to {v3}", second.Out);

        var compare = (await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "raw", image, $"{nbd}@{v3}")).AssertOk();
        Assert.Contains("Images are identical", compare.Out);
        Assert.NotEqual(0, (await Tool.RunAsync("qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", image, $"{nbd}@{v2}")).Code);

        // The stream's ranges are `cloudfs diff`'s, its bytes are TO's there.
        foreach (var (from, to, json) in new[] { (v1, v2, diff12), (v2, v3, (await _one.Cli("diff", volume, v2, v3, "--json")).AssertOk().Out) })
        {
            var stream = await StreamAsync(volume, from, to);
            Assert.Equal((Id160.Parse(from), Id160.Parse(to), 64L << 20), (stream.From, stream.To, stream.SizeBytes));
            Assert.Equal(DiffRanges(json), stream.Ranges());
            Assert.Equal((stream.Records.Count, stream.Records.Sum(r => r.Length)), ((int)stream.EndRecords, stream.EndBytes));
            Assert.True(stream.Records.Count > 64, $"{stream.Records.Count} ranges: the scattered writes stay apart");
        }
        var exported = await Tool.RunAsync("qemu-io", "-r", "-f", "raw", $"{nbd}@{v2}", "-c", "read -P 0x2a 8M 512", "-c", "read -P 0 10M 128k", "-c", "read -P 0 11M 1M");
        Assert.DoesNotContain("Pattern verification failed", exported.AssertOk().Out);
    }

    [Fact]
    public async Task A_stream_to_the_current_version_reads_as_of_it_while_writes_go_on()
    {
        var volume = await Node.NewDiskAsync("64M");
        var v1 = await Version(volume);
        await QemuIo(Node.Nbd(volume), ["write -P 0x41 0 48M"]);
        var current = await Version(volume);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        using var response = await http.GetAsync($"{Node.HttpBase}/volumes/{volume}/changes?from={v1}", HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync();
        var header = new byte[60];
        await body.ReadExactlyAsync(header);
        Assert.Equal(Id160.Parse(current), ChangeStream.Header(header).To);
        // The node has sent at most its buffer and what the sockets hold: the end of the range is still to be read.
        await QemuIo(Node.Nbd(volume), ["write -P 0x42 40M 8M"]);
        using var rest = new MemoryStream();
        await body.CopyToAsync(rest);
        var stream = ChangeStream.Parse([.. header, .. rest.ToArray()]);
        Assert.Equal([(0L, 48L << 20)], stream.Ranges());
        Assert.All(stream.Records, r => Assert.True(r.Data.All(b => b == 0x41), $"the record at {r.Offset} reads {current}"));
        Assert.NotEqual(current, await Version(volume));
    }
}
