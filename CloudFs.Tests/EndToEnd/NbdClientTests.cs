// Real NBD clients against a real node: qemu-io patterns, qemu-img convert/compare, nbdinfo list/can/map, fio verify.
namespace CloudFs.Tests.EndToEnd;

public sealed class NbdClientNode() : OneNode("127.0.0.10");

public sealed class NbdClientTests(NbdClientNode fixture) : IClassFixture<NbdClientNode>
{
    private NodeProcess Node => fixture.Node;

    [Fact]
    public async Task Qemu_io_writes_zeroes_discards_and_flushes_then_reads_back_the_patterns()
    {
        var volume = await Node.NewDiskAsync();
        var uri = Node.Nbd(volume);
        (await Tool.QemuIo(uri,
            "write -P 0xab 0 1M",
            "write -z 256k 64k",
            "discard 512k 64k",
            "write -P 0x5c 4097536 4096",
            "flush")).AssertOk();
        // A fresh connection: what was flushed is what the volume holds.
        (await Tool.QemuIo(uri,
            "read -P 0xab 0 256k",
            "read -P 0 256k 64k",
            "read -P 0xab 320k 192k",
            "read -P 0 512k 64k",
            "read -P 0xab 576k 448k",
            "read -P 0 1M 2M",
            "read -P 0x5c 4097536 4096")).AssertOk();
    }

    [Fact]
    public async Task A_volume_name_is_an_nbd_export_name_and_an_http_path_as_its_id_is()
    {
        var volume = (await Tool.CloudFs(["newdisk", "1", "--size", "16M", "--name", "vm-disk.1", "--contact", Node.Listen])).AssertOk().Out.Trim();
        (await Tool.QemuIo(Node.Nbd("vm-disk.1"), "write -P 0x6e 64k 64k", "flush")).AssertOk();
        (await Tool.QemuIo(Node.Nbd(volume), "read -P 0x6e 64k 64k")).AssertOk();
        var size = (await Tool.RunAsync("nbdinfo", "--size", Node.Nbd("vm-disk.1"))).AssertOk();
        Assert.Equal((16L << 20).ToString(), size.Out.Trim());
        // A name no volume has, and a word that is no name, are unknown exports (a clear error, nothing served).
        var missing = await Tool.RunAsync("nbdinfo", "--size", Node.Nbd("no-such-disk"));
        Assert.NotEqual(0, missing.Code);
        Assert.Contains("no export named 'no-such-disk'", missing.Err);
        Assert.NotEqual(0, (await Tool.RunAsync("nbdinfo", "--size", Node.Nbd("bad%20name"))).Code);

        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{Node.HttpBase}/volumes/vm-disk.1");
        request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(64 << 10, (128 << 10) - 1);
        using var response = await http.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.PartialContent, response.StatusCode);
        Assert.All(await response.Content.ReadAsByteArrayAsync(), b => Assert.Equal(0x6e, b));
        using var unknown = await http.GetAsync($"{Node.HttpBase}/volumes/no-such-disk");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("no volume named 'no-such-disk'", await unknown.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Qemu_img_convert_into_a_volume_compares_identical()
    {
        var volume = await Node.NewDiskAsync("32M");
        var image = fixture.Dir.File($"image-{volume[..8]}.raw");
        (await Tool.RunAsync("qemu-img", "create", "-f", "raw", image, "32M")).AssertOk();
        (await Tool.QemuIo(image, "write -P 0x11 0 1M", "write -P 0x22 5M 3M", "write -P 0x33 31M 512k")).AssertOk();
        (await Tool.RunAsync("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", image, Node.Nbd(volume))).AssertOk();
        var compare = (await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "raw", image, Node.Nbd(volume))).AssertOk();
        Assert.Contains("Images are identical", compare.Out);
        // And compare notices a difference, so the check above means something.
        (await Tool.QemuIo(Node.Nbd(volume), "write -P 0x44 2M 512", "flush")).AssertOk();
        var differ = await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "raw", image, Node.Nbd(volume));
        Assert.Equal(1, differ.Code);
    }

    [Fact]
    public async Task Nbdinfo_lists_the_volume_and_reports_flush_fua_trim_and_zero()
    {
        var volume = await Node.NewDiskAsync("16M");
        var list = (await Tool.RunAsync("nbdinfo", "--list", $"nbd://{Node.Listen}")).AssertOk();
        Assert.Contains(volume, list.Out);
        foreach (var can in new[] { "flush", "fua", "trim", "zero" })
        {
            var r = await Tool.RunAsync("nbdinfo", "--can", can, Node.Nbd(volume));
            Assert.True(r.Code == 0, $"nbdinfo --can {can}: {r}");
        }
        var size = (await Tool.RunAsync("nbdinfo", "--size", Node.Nbd(volume))).AssertOk();
        Assert.Equal((16L << 20).ToString(), size.Out.Trim());
    }

    [Fact]
    public async Task Nbdinfo_map_shows_written_data_and_holes()
    {
        var volume = await Node.NewDiskAsync("16M");
        (await Tool.QemuIo(Node.Nbd(volume), "write -P 0x7e 1M 1M", "flush")).AssertOk();
        var map = (await Tool.RunAsync("nbdinfo", "--map", Node.Nbd(volume))).AssertOk();
        var rows = map.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(f => (Offset: long.Parse(f[0]), Length: long.Parse(f[1]), Hole: f[^1].Contains("hole")))
            .ToList();
        Assert.Contains(rows, r => !r.Hole && r.Offset <= 1 << 20 && r.Offset + r.Length >= 2 << 20);
        Assert.Contains(rows, r => r.Hole && r.Offset == 0);
        Assert.Contains(rows, r => r.Hole && r.Offset + r.Length == 16 << 20);
    }

    [Fact]
    public async Task Fio_crc32c_verify_job_over_the_nbd_engine_passes()
    {
        var volume = await Node.NewDiskAsync("32M");
        var fio = await Tool.RunAsync("fio", [
            "--name=verify", "--ioengine=nbd", $"--uri={Node.Nbd(volume)}", "--rw=randwrite", "--bs=4k", "--size=8M",
            "--iodepth=16", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=terse",
        ], TimeSpan.FromSeconds(180));
        Assert.True(fio.Code == 0, fio.ToString());
        Assert.DoesNotContain("verify:", fio.Err);
    }
}
