// Requests real clients can be made to send with strict mode off (nbdsh), and gateway failures: each gets the
// error the protocol names, and the connection (and the node) keeps serving.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Nbd;

public class NbdErrorTests
{
    private const string ErrnoOf = """
        def errno_of(f):
            try:
                f()
                return 0
            except nbd.Error as e:
                return e.errno
        """;

    /// <summary>Runs a Python script in nbdsh against <paramref name="uri"/> with errno_of(f) defined; its "key value" lines as a dictionary.</summary>
    internal static async Task<Dictionary<string, string>> NbdshAsync(string uri, string script)
    {
        var result = (await ExternalTool.RunAsync("nbdsh", "-u", uri, "-c", "h.set_strict_mode(0)", "-c", ErrnoOf + "\n" + script)).AssertSuccess();
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1].Trim() : "");
    }

    [Fact]
    public async Task Out_of_range_misaligned_oversize_and_unadvertised_requests_get_EINVAL_or_ENOSPC_and_the_connection_keeps_working()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);

        var r = await NbdshAsync(nbd.Uri(id), """
            size = h.get_size()
            print("range", errno_of(lambda: h.pread(4096, size)))
            print("straddle", errno_of(lambda: h.pwrite(b"x" * 8192, size - 4096)))
            print("misaligned", errno_of(lambda: h.pwrite(b"x" * 100, 3)))
            print("oversize", errno_of(lambda: h.pread(48 * 1024 * 1024, 0)))
            print("cache", errno_of(lambda: h.cache(4096, 0)))
            print("fastzero", errno_of(lambda: h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO)))
            print("trimtail", errno_of(lambda: h.trim(1024, size)))
            h.pwrite(b"\x42" * 4096, 0)
            print("after", h.pread(4096, 0) == b"\x42" * 4096)
            """);

        Assert.Equal("EINVAL", r["range"]);
        Assert.Equal("ENOSPC", r["straddle"]); // proto.md: a write past the end is ENOSPC
        Assert.Equal("EINVAL", r["misaligned"]);
        Assert.Equal("EINVAL", r["oversize"]);
        Assert.Equal("EINVAL", r["cache"]);
        Assert.Equal("EINVAL", r["fastzero"]);
        Assert.Equal("EINVAL", r["trimtail"]);
        Assert.Equal("True", r["after"]);
        Assert.All(nbd.Gateway.Peek(id, NbdTestServer.DefaultSize - 4096, 4096), b => Assert.Equal(0, b)); // the straddling write changed nothing
    }

    [Fact]
    public async Task Gateway_failures_map_to_ENOSPC_EPERM_and_EIO()
    {
        await using var nbd = NbdTestServer.Start();
        var full = nbd.Gateway.AddVolume(1024 * 1024);
        nbd.Gateway.SetWriteFault(full, new LogFullException("the log has no free segment left"));
        var demoted = nbd.Gateway.AddVolume(1024 * 1024);
        var corrupt = nbd.Gateway.AddVolume(1024 * 1024);
        nbd.Gateway.Corrupt(corrupt, 8192, 4096);
        var broken = nbd.Gateway.AddVolume(1024 * 1024);
        nbd.Gateway.SetWriteFault(broken, new InvalidOperationException("boom in the actor layer"));
        var replica = nbd.Gateway.AddVolume(1024 * 1024, writable: false);

        var onFull = await NbdshAsync(nbd.Uri(full), """
            print("write", errno_of(lambda: h.pwrite(b"x" * 4096, 0)))
            print("zero", errno_of(lambda: h.zero(4096, 0)))
            print("read", errno_of(lambda: h.pread(4096, 0)))
            """);
        Assert.Equal("ENOSPC", onFull["write"]);
        Assert.Equal("ENOSPC", onFull["zero"]);
        Assert.Equal("0", onFull["read"]);

        // The node lost the volume's secret after the client connected: writes are EPERM.
        nbd.Gateway.SetWriteFault(demoted, new NotPrimaryException(demoted));
        var onDemoted = await NbdshAsync(nbd.Uri(demoted), """print("write", errno_of(lambda: h.pwrite(b"x" * 4096, 0)))""");
        Assert.Equal("EPERM", onDemoted["write"]);

        var onReplica = await NbdshAsync(nbd.Uri(replica), """
            print("ro", h.is_read_only())
            print("write", errno_of(lambda: h.pwrite(b"x" * 4096, 0)))
            print("trim", errno_of(lambda: h.trim(4096, 0)))
            print("read", errno_of(lambda: h.pread(4096, 0)))
            """);
        Assert.Equal("True", onReplica["ro"]);
        Assert.Equal("EPERM", onReplica["write"]);
        Assert.Equal("EPERM", onReplica["trim"]);
        Assert.Equal("0", onReplica["read"]);

        var onCorrupt = await NbdshAsync(nbd.Uri(corrupt), """
            print("bad", errno_of(lambda: h.pread(4096, 8192)))
            print("overlap", errno_of(lambda: h.pread(8192, 4096)))
            print("good", errno_of(lambda: h.pread(4096, 0)))
            print("after", errno_of(lambda: h.pread(4096, 12288)))
            """);
        Assert.Equal("EIO", onCorrupt["bad"]);
        Assert.Equal("EIO", onCorrupt["overlap"]);
        Assert.Equal("0", onCorrupt["good"]);
        Assert.Equal("0", onCorrupt["after"]);

        var onBroken = await NbdshAsync(nbd.Uri(broken), """
            print("write", errno_of(lambda: h.pwrite(b"x" * 4096, 0)))
            print("flush", errno_of(lambda: h.flush()))
            """);
        Assert.Equal("EIO", onBroken["write"]);
        Assert.Equal("0", onBroken["flush"]);
        Assert.Contains(nbd.Log, line => line.Contains("boom in the actor layer"));
    }

    [Fact]
    public async Task Block_status_without_a_selected_meta_context_is_EINVAL()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);

        // libnbd requests no meta context unless add_meta_context is called; send BLOCK_STATUS anyway.
        var result = (await ExternalTool.RunAsync("nbdsh", "-c", "h.set_strict_mode(0)", "-c", ErrnoOf + $"""

            h.connect_uri("{nbd.Uri(id)}")
            print("negotiated", h.can_meta_context("base:allocation"))
            print("status", errno_of(lambda: h.block_status(4096, 0, lambda *a: 0)))
            print("read", errno_of(lambda: h.pread(4096, 0)))
            """)).AssertSuccess();

        Assert.Contains("negotiated False", result.Stdout);
        Assert.Contains("status EINVAL", result.Stdout);
        Assert.Contains("read 0", result.Stdout);
    }
}
