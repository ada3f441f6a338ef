// Runs the external programs the end-to-end tests drive (cloudfs, qemu-io, qemu-img, nbdinfo, fio, curl, ip,
// docker-compose) and fails, naming the tool, when one is not installed.
using System.Diagnostics;
using System.Text;

namespace CloudFs.Tests.Support;

public sealed record ToolResult(string Command, int Code, string Out, string Err)
{
    public override string ToString() => $"`{Command}` exited {Code}\nstdout: {Out}\nstderr: {Err}";

    public ToolResult AssertOk()
    {
        Assert.True(Code == 0, ToString());
        return this;
    }
}

internal static class Tool
{
    private static readonly Dictionary<string, string> Packages = new()
    {
        ["qemu-io"] = "qemu-utils", ["qemu-img"] = "qemu-utils", ["nbdinfo"] = "libnbd-bin", ["nbdsh"] = "libnbd-bin",
        ["fio"] = "fio", ["curl"] = "curl", ["bash"] = "bash", ["docker-compose"] = "docker-compose", ["ip"] = "iproute2",
        ["timeout"] = "coreutils", ["nbdkit"] = "nbdkit", ["nbdfuse"] = "libnbd-bin", ["umount"] = "mount", ["losetup"] = "mount", ["mkfs.ext4"] = "e2fsprogs", ["fusermount3"] = "fuse3",
    };

    /// <summary>The tool's full path; a missing tool fails the test with its name (./run-tests installs them).</summary>
    public static string Require(string name)
    {
        if (name.Contains('/')) return name;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        Assert.Fail($"{name} is not installed (apt-get install {Packages.GetValueOrDefault(name, name)}; ./run-tests installs it)");
        return "";
    }

    public static async Task<ToolResult> RunAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null, byte[]? stdin = null)
    {
        var psi = new ProcessStartInfo(Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var command = tool + " " + string.Join(' ', psi.ArgumentList);
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (stdin is not null) await process.StandardInput.BaseStream.WriteAsync(stdin);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            // Killed, its pipes close: what it printed before is there to read.
            await Task.WhenAny(error, Task.Delay(TimeSpan.FromSeconds(5)));
            Assert.Fail($"`{command}` did not finish within {(timeout ?? TimeSpan.FromSeconds(120)).TotalSeconds} s; stderr so far: {(error.IsCompleted ? error.Result : "")}");
        }
        return new ToolResult(command, process.ExitCode, await output, await error);
    }

    public static Task<ToolResult> RunAsync(string tool, params string[] args) => RunAsync(tool, (IEnumerable<string>)args);

    /// <summary>`./cloudfs ARGS` from the repository root: the same command the README shows.</summary>
    public static Task<ToolResult> CloudFs(params string[] args) => RunAsync(Repo.CloudFsScript, args, TimeSpan.FromSeconds(300));

    /// <summary>A bash pipeline, with pipefail, run from the repository root.</summary>
    public static Task<ToolResult> Bash(string script, TimeSpan? timeout = null) =>
        RunAsync("bash", ["-c", $"set -euo pipefail; cd '{Repo.Root}'; {script}"], timeout ?? TimeSpan.FromSeconds(180));

    /// <summary>qemu-io with its commands on one raw NBD image; exit 0 means every command (and pattern check) passed.</summary>
    public static Task<ToolResult> QemuIo(string uri, params string[] commands) => QemuIo(uri, readOnly: false, commands);

    /// <summary>As <see cref="QemuIo(string, string[])"/>, opened read-only (-r): a replica exports its volume read-only.</summary>
    public static Task<ToolResult> QemuIoReadOnly(string uri, params string[] commands) => QemuIo(uri, readOnly: true, commands);

    private static Task<ToolResult> QemuIo(string uri, bool readOnly, string[] commands)
    {
        var args = new List<string> { "-f", "raw" };
        if (readOnly) args.Add("-r");
        foreach (var c in commands) { args.Add("-c"); args.Add(c); }
        args.Add(uri);
        return RunAsync("qemu-io", args, TimeSpan.FromSeconds(120));
    }

    public static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
