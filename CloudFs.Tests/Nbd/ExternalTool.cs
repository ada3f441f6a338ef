// Runs a real client (nbdinfo, nbdsh, qemu-io, qemu-img, fio) as a separate process with a timeout; a missing tool
// fails the test with a message naming it, as the project's test rules ask.
using System.Diagnostics;

namespace CloudFs.Tests.Nbd;

public sealed record ToolResult(string Tool, int ExitCode, string Stdout, string Stderr)
{
    public ToolResult AssertSuccess()
    {
        Assert.True(ExitCode == 0, $"{Tool} exited with {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        return this;
    }
}

public static class ExternalTool
{
    public static string Find(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Append("/usr/bin").Append("/usr/sbin"))
        {
            var path = Path.Combine(dir, tool);
            if (File.Exists(path)) return path;
        }
        Assert.Fail($"{tool} is not installed: this test drives the real {tool} (./run-tests installs it; on Debian: apt-get install {Package(tool)})");
        return tool;
    }

    private static string Package(string tool) => tool switch
    {
        "nbdsh" => "python3-libnbd",
        "nbdinfo" or "nbdcopy" => "libnbd-bin",
        "qemu-io" or "qemu-img" or "qemu-nbd" => "qemu-utils",
        _ => tool,
    };

    public static async Task<ToolResult> RunAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(Find(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        if (tool == "nbdsh")
        {
            // nbdsh runs "python3 -m nbd": the system python carries the nbd module, a python earlier on PATH may not.
            info.Environment["PATH"] = "/usr/bin:/bin:" + Environment.GetEnvironmentVariable("PATH");
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {tool}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try { await process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{tool} {string.Join(' ', args)} did not finish within {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds} s\nstdout so far:\n{(stdout.IsCompleted ? stdout.Result : "")}");
        }
        return new ToolResult(tool, process.ExitCode, await stdout, await stderr);
    }

    public static Task<ToolResult> RunAsync(string tool, params string[] args) => RunAsync(tool, (IEnumerable<string>)args);
}
