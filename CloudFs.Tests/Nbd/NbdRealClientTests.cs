// The NBD server driven by the real clients users run (nbdinfo, qemu-io, qemu-img, fio) as separate processes.
using System.Text.Json;
using Xunit.Abstractions;

namespace CloudFs.Tests.Nbd;

public class NbdRealClientTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Nbdinfo_lists_every_volume_as_an_export()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var a = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);
        var b = nbd.Gateway.AddVolume(4 * 1024 * 1024);

        var list = (await ExternalTool.RunAsync("nbdinfo", "--list", "--json", nbd.ListUri)).AssertSuccess();

        using var json = JsonDocument.Parse(list.Stdout);
        var exports = json.RootElement.GetProperty("exports").EnumerateArray()
            .ToDictionary(e => e.GetProperty("export-name").GetString()!, e => e.GetProperty("export-size").GetInt64());
        Assert.Equal(NbdTestServer.DefaultSize, exports[a.ToString()]);
        Assert.Equal(4 * 1024 * 1024, exports[b.ToString()]);
    }

    [Fact]
    public async Task Nbdinfo_sees_the_size_block_sizes_and_capabilities_of_a_volume()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);

        var info = (await ExternalTool.RunAsync("nbdinfo", "--json", nbd.Uri(id))).AssertSuccess();
        using var json = JsonDocument.Parse(info.Stdout);
        var export = json.RootElement.GetProperty("exports")[0];
        Assert.Equal(NbdTestServer.DefaultSize, export.GetProperty("export-size").GetInt64());
        Assert.Equal(512, export.GetProperty("block_size_minimum").GetInt64());
        Assert.Equal(4096, export.GetProperty("block_size_preferred").GetInt64());
        Assert.Equal(32 * 1024 * 1024, export.GetProperty("block_size_maximum").GetInt64());
        Assert.True(export.GetProperty("can_multi_conn").GetBoolean());
        Assert.False(export.GetProperty("is_read_only").GetBoolean());

        foreach (var can in new[] { "flush", "fua", "trim", "zero", "multi-conn", "structured-reply" })
            (await ExternalTool.RunAsync("nbdinfo", "--can", can, nbd.Uri(id))).AssertSuccess();
    }

    [Fact]
    public async Task A_volume_this_node_cannot_write_is_exported_read_only()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var replica = nbd.Gateway.AddVolume(1024 * 1024, writable: false);

        (await ExternalTool.RunAsync("nbdinfo", "--is", "readonly", nbd.Uri(replica))).AssertSuccess();
    }

    [Fact]
    public async Task An_unknown_export_is_refused_by_name()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        nbd.Gateway.AddVolume(1024 * 1024);

        var result = await ExternalTool.RunAsync("nbdinfo", nbd.Uri(CloudFs.BlockDevice.Id160.Random()));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("export", result.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Qemu_io_writes_zeroes_discards_flushes_and_reads_back_patterns()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);

        (await ExternalTool.RunAsync("qemu-io", "-f", "raw", nbd.Uri(id),
            "-c", "write -P 0xab 0 64k",
            "-c", "write -P 0xcd 64k 64k",
            "-c", "write -z 64k 32k",
            "-c", "write -P 0xef 1M 128k",
            "-c", "discard 1M 64k",
            "-c", "write -f -P 0x11 2M 4k",
            "-c", "flush",
            "-c", "read -P 0xab 0 64k",
            "-c", "read -P 0 64k 32k",
            "-c", "read -P 0xcd 96k 32k",
            "-c", "read -P 0 1M 64k",
            "-c", "read -P 0xef 1088k 64k",
            "-c", "read -P 0x11 2M 4k")).AssertSuccess();

        // What reached the gateway is what was written, not merely what qemu-io read back.
        Assert.All(nbd.Gateway.Peek(id, 0, 65536), b => Assert.Equal(0xab, b));
        Assert.All(nbd.Gateway.Peek(id, 65536, 32768), b => Assert.Equal(0, b));
        Assert.All(nbd.Gateway.Peek(id, 98304, 32768), b => Assert.Equal(0xcd, b));
        Assert.All(nbd.Gateway.Peek(id, 1024 * 1024, 65536), b => Assert.Equal(0, b));
        Assert.True(nbd.Gateway.Flushes >= 2, "FLUSH and the FUA write should both reach the gateway");
    }

    [Fact]
    public async Task Qemu_io_misaligned_writes_are_made_whole_by_the_advertised_block_size()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);

        // qemu honours the 512-byte minimum from NBD_INFO_BLOCK_SIZE with read-modify-write; bytes around stay intact.
        (await ExternalTool.RunAsync("qemu-io", "-f", "raw", nbd.Uri(id),
            "-c", "write -P 0x22 0 4k",
            "-c", "write -P 0x33 100 1000",
            "-c", "read -P 0x22 0 100",
            "-c", "read -P 0x33 100 1000",
            "-c", "read -P 0x22 1100 2996")).AssertSuccess();

        var bytes = nbd.Gateway.Peek(id, 0, 4096);
        Assert.All(bytes[..100], b => Assert.Equal(0x22, b));
        Assert.All(bytes[100..1100], b => Assert.Equal(0x33, b));
        Assert.All(bytes[1100..], b => Assert.Equal(0x22, b));
    }

    [Fact]
    public async Task Nbdinfo_map_and_qemu_img_map_see_holes_and_data()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);
        (await ExternalTool.RunAsync("qemu-io", "-f", "raw", nbd.Uri(id), "-c", "write -P 0x5a 1M 64k", "-c", "write -P 0x5b 4M 8k")).AssertSuccess();

        var map = (await ExternalTool.RunAsync("nbdinfo", "--map", "--json", nbd.Uri(id))).AssertSuccess();
        using (var json = JsonDocument.Parse(map.Stdout))
        {
            var extents = json.RootElement.EnumerateArray()
                .Select(e => (Offset: e.GetProperty("offset").GetInt64(), Length: e.GetProperty("length").GetInt64(), Type: e.GetProperty("type").GetInt32()))
                .ToList();
            Assert.Equal(NbdTestServer.DefaultSize, extents.Sum(e => e.Length));
            Assert.Contains((1024L * 1024, 65536L, 0), extents);
            Assert.Contains((4L * 1024 * 1024, 8192L, 0), extents);
            Assert.Contains((0L, 1024L * 1024, 3), extents); // hole + zero
            Assert.Equal(2, extents.Count(e => e.Type == 0));
        }

        var qemuMap = (await ExternalTool.RunAsync("qemu-img", "map", "--output=json", "-f", "raw", nbd.Uri(id))).AssertSuccess();
        using (var json = JsonDocument.Parse(qemuMap.Stdout))
        {
            var data = json.RootElement.EnumerateArray()
                .Where(e => e.GetProperty("data").GetBoolean())
                .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64()))
                .ToList();
            Assert.Equal([(1024L * 1024, 65536L), (4L * 1024 * 1024, 8192L)], data);
        }
    }

    [Fact]
    public async Task Nbdcopy_over_four_connections_round_trips_an_image()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);
        var dir = Directory.CreateTempSubdirectory("cloudfs-nbdcopy-");
        try
        {
            var image = new byte[NbdTestServer.DefaultSize];
            new Random(42).NextBytes(image.AsSpan(0, 6 * 1024 * 1024)); // the tail stays zero: nbdcopy may skip it
            var source = Path.Combine(dir.FullName, "source.raw");
            var copy = Path.Combine(dir.FullName, "copy.raw");
            await File.WriteAllBytesAsync(source, image);

            // CAN_MULTI_CONN lets nbdcopy spread the copy over several connections and flush on just one.
            (await ExternalTool.RunAsync("nbdcopy", "--connections=4", "--threads=4", "--flush", source, nbd.Uri(id))).AssertSuccess();
            Assert.True(nbd.Server.ConnectionsAccepted >= 4, $"nbdcopy opened {nbd.Server.ConnectionsAccepted} connections, expected 4 (multi-conn)");
            Assert.True(nbd.Gateway.Peek(id, 0, image.Length).AsSpan().SequenceEqual(image), "the volume holds the image");
            Assert.True(nbd.Gateway.Flushes >= 1, "nbdcopy --flush should reach the gateway");

            (await ExternalTool.RunAsync("nbdcopy", "--connections=4", "--threads=4", nbd.Uri(id), copy)).AssertSuccess();
            Assert.True((await File.ReadAllBytesAsync(copy)).AsSpan().SequenceEqual(image), "the image read back over NBD is the one written");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Fio_verifies_crc32c_over_the_nbd_engine_at_queue_depth_16()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);

        var fio = await ExternalTool.RunAsync("fio",
            ["--name=verify", "--ioengine=nbd", $"--uri={nbd.Uri(id)}", "--rw=randwrite", "--bs=4k", "--iodepth=16",
             "--size=8m", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--randrepeat=1", "--output-format=json"],
            TimeSpan.FromSeconds(60));
        fio.AssertSuccess();

        using var json = JsonDocument.Parse(fio.Stdout[fio.Stdout.IndexOf('{')..]);
        var job = json.RootElement.GetProperty("jobs")[0];
        Assert.Equal(0, job.GetProperty("error").GetInt32());
        Assert.Equal(8 * 1024 * 1024, job.GetProperty("write").GetProperty("io_bytes").GetInt64());
        Assert.True(job.GetProperty("read").GetProperty("io_bytes").GetInt64() >= 8 * 1024 * 1024, "fio read everything back to verify it");
    }
}
