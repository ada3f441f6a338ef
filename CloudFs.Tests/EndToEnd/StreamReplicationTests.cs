// Version streams between two independent nodes: `cloudfs stream | cloudfs apply`, curl POST /log, and a forged stream.
namespace CloudFs.Tests.EndToEnd;

public sealed class TwoNodes : IAsyncLifetime
{
    internal TempDir Dir { get; } = new();
    internal NodeProcess Source { get; private set; } = null!;
    internal NodeProcess Target { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var a = NodeProcess.StartAsync("127.0.0.11", Dir.File("a.log"));
        var b = NodeProcess.StartAsync("127.0.0.12", Dir.File("b.log"));
        Source = await a;
        Target = await b;
    }

    public async Task DisposeAsync()
    {
        if (Source is not null) await Source.DisposeAsync();
        if (Target is not null) await Target.DisposeAsync();
        Dir.Dispose();
    }
}

public sealed class StreamReplicationTests(TwoNodes nodes) : IClassFixture<TwoNodes>
{
    private NodeProcess A => nodes.Source;
    private NodeProcess B => nodes.Target;

    private async Task<string> VolumeWithDataAsync()
    {
        var volume = await A.NewDiskAsync("32M");
        (await Tool.QemuIo(A.Nbd(volume), "write -P 0x11 0 64k", "write -P 0x22 1M 64k", "write -z 8k 4k", "write -P 0x33 2M 64k", "flush")).AssertOk();
        return volume;
    }

    private async Task AssertIdenticalAsync(string volume)
    {
        var head = await A.HeadAsync(volume);
        Assert.NotEqual($"{volume}:{volume}", head);
        Assert.Equal(head, await B.HeadAsync(volume));
        var compare = (await Tool.RunAsync("qemu-img", "compare", "-f", "raw", "-F", "raw", A.Nbd(volume), B.Nbd(volume))).AssertOk();
        Assert.Contains("Images are identical", compare.Out);
    }

    [Fact]
    public async Task Stream_piped_into_apply_on_a_second_node_gives_the_same_head_and_bytes()
    {
        var volume = await VolumeWithDataAsync();
        (await Tool.Bash($"./cloudfs stream {volume} --http {A.Listen} | ./cloudfs apply --import --http {B.Listen}")).AssertOk();
        await AssertIdenticalAsync(volume);

        // Later writes follow as a stream after the head the target already has.
        var before = (await B.HeadAsync(volume)).Split(':')[1];
        (await Tool.QemuIo(A.Nbd(volume), "write -P 0x44 3M 64k", "flush")).AssertOk();
        (await Tool.Bash($"./cloudfs stream {before} --http {A.Listen} | ./cloudfs apply --http {B.Listen}")).AssertOk();
        await AssertIdenticalAsync(volume);
    }

    [Fact]
    public async Task A_stream_that_creates_a_volume_the_node_does_not_hold_is_refused_with_403_unless_it_is_an_import()
    {
        var volume = await VolumeWithDataAsync();
        var file = nodes.Dir.File($"{volume[..8]}.import");
        (await Tool.Bash($"./cloudfs stream {volume} --http {A.Listen} > '{file}'")).AssertOk();

        var apply = await Tool.Bash($"./cloudfs apply --http {B.Listen} < '{file}'");
        Assert.NotEqual(0, apply.Code);
        Assert.Contains("HTTP 403", apply.Err);
        Assert.Contains("is an import", apply.Err);
        var curl = await Tool.RunAsync("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", file, "-X", "POST", $"{B.HttpBase}/log");
        Assert.Equal("403", curl.Out);
        Assert.DoesNotContain(volume, await B.HeadsAsync());

        (await Tool.Bash($"./cloudfs apply --import --http {B.Listen} < '{file}'")).AssertOk();
        await AssertIdenticalAsync(volume);
    }

    [Fact]
    public async Task Stream_follow_piped_into_apply_replicates_new_writes_live()
    {
        var volume = await A.NewDiskAsync("32M");
        using var pipe = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(Tool.Require("bash"))
        {
            ArgumentList = { "-c", $"set -o pipefail; ./cloudfs stream {volume} --follow --http {A.Listen} | ./cloudfs apply --import --http {B.Listen}" },
            WorkingDirectory = Repo.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        try
        {
            foreach (var pattern in new[] { 0x51, 0x52 })
            {
                (await Tool.QemuIo(A.Nbd(volume), $"write -P {pattern} {pattern - 0x50}M 64k", "flush")).AssertOk();
                var expected = await A.HeadAsync(volume);
                await Eventually.Until(async () => (await B.HeadsAsync()).Contains(expected) || pipe.HasExited, TimeSpan.FromSeconds(60),
                    () => $"B at {expected}");
                Assert.True((await B.HeadsAsync()).Contains(expected), $"B did not reach {expected}; pipeline exited: {pipe.HasExited}");
            }
        }
        finally
        {
            pipe.Kill(entireProcessTree: true);
            await pipe.WaitForExitAsync();
        }
        await AssertIdenticalAsync(volume);
    }

    [Fact]
    public async Task Curl_post_log_applies_a_stream_from_get_stream()
    {
        var volume = await VolumeWithDataAsync();
        var file = nodes.Dir.File($"{volume[..8]}.stream");
        (await Tool.RunAsync("curl", "-sS", "--fail-with-body", "-o", file, $"{A.HttpBase}/stream?{volume}")).AssertOk();
        Assert.True(new FileInfo(file).Length > 3 * 64 * 1024, "the stream carries the written data");
        (await Tool.RunAsync("curl", "-sS", "--fail-with-body", "-T", file, "-X", "POST", $"{B.HttpBase}/log?import=1")).AssertOk();
        await AssertIdenticalAsync(volume);
    }

    [Fact]
    public async Task A_stream_with_a_flipped_byte_is_refused_and_nothing_past_the_bad_entry_is_applied()
    {
        var volume = await VolumeWithDataAsync();
        var file = nodes.Dir.File($"{volume[..8]}.forged");
        (await Tool.Bash($"./cloudfs stream {volume} --http {A.Listen} > '{file}'")).AssertOk();
        var bytes = await File.ReadAllBytesAsync(file);
        // Flip a byte inside the 0x22 data: the entries before it (creation, 0x11, zeroes) may apply, none after.
        var at = IndexOfRun(bytes, 0x22, 4096);
        Assert.True(at >= 0, "the stream carries the 0x22 block data as written");
        bytes[at + 1000] ^= 0xff;
        await File.WriteAllBytesAsync(file, bytes);

        var apply = await Tool.Bash($"./cloudfs apply --import --http {B.Listen} < '{file}'");
        Assert.NotEqual(0, apply.Code);
        Assert.Contains("HTTP 4", apply.Err);

        var curl = await Tool.RunAsync("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", file, "-X", "POST", $"{B.HttpBase}/log?import=1");
        Assert.StartsWith("4", curl.Out);

        // B holds a prefix of A's chain: its head is a version A knows, not A's head, and the 0x33 write is absent.
        var headOnB = (await B.HeadAsync(volume)).Split(':')[1];
        Assert.NotEqual((await A.HeadAsync(volume)).Split(':')[1], headOnB);
        (await Tool.RunAsync("curl", "-sS", "--fail-with-body", "-o", "/dev/null", $"{A.HttpBase}/stream?{headOnB}")).AssertOk();
        (await Tool.QemuIoReadOnly(B.Nbd(volume), "read -P 0x11 0 64k", "read -P 0 1M 64k", "read -P 0 2M 64k")).AssertOk();
        // The node keeps serving.
        Assert.Contains(volume, await B.HeadsAsync());
    }

    private static int IndexOfRun(byte[] data, byte value, int length)
    {
        var run = 0;
        for (var i = 0; i < data.Length; i++)
        {
            run = data[i] == value ? run + 1 : 0;
            if (run == length) return i - length + 1;
        }
        return -1;
    }
}
