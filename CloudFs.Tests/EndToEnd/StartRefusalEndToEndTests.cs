// A node that refuses to start (its device held by a running node, too small, or another host's) says so in one
// sentence and nothing else: it opens its device before its actor system, so it refuses before any port is bound
// (no "Remoting shut down.", no coordinated-shutdown warning after a 5 s wait), and leaves no file behind.
// Nodes on 127.0.54.1-2.
namespace CloudFs.Tests.EndToEnd;

public sealed class StartRefusalEndToEndTests : IDisposable
{
    private const string RefusalPrefix = "cloudfs: cannot start the node: ";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_held_device_another_hosts_and_a_too_small_one_are_refused_in_one_line_leaving_nothing()
    {
        var device = _dir.File("held.log");
        await using (var holder = await NodeProcess.StartAsync("127.0.54.1", device, "--size", "512M"))
        {
            AssertOneSentence(await NodeProcess.StartExpectingFailureAsync("127.0.54.2", device), "is held by another process");
            Assert.Contains(holder.HostId, await holder.HeadsAsync() + holder.ReadyLine);
        }

        AssertOneSentence(await NodeProcess.StartExpectingFailureAsync("127.0.54.2", device, "--host-id", new string('1', 40)), "belongs to host");

        var small = _dir.File("small.log");
        AssertOneSentence(await NodeProcess.StartExpectingFailureAsync("127.0.54.2", small, "--size", "1M"), "too small");
        Assert.False(File.Exists(small), "the refused start left its log file behind");
        Assert.False(File.Exists(small + ".keys"), "the refused start left its key file behind");
    }

    private static void AssertOneSentence((int Code, string Stderr) refused, string reason)
    {
        Assert.NotEqual(0, refused.Code);
        var lines = refused.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith(RefusalPrefix, StringComparison.Ordinal) && lines[0].Contains(reason, StringComparison.Ordinal),
            $"expected one line \"{RefusalPrefix}...{reason}...\", got:\n{refused.Stderr}");
    }
}
