// A disk that fails on command, as the issue that asked for device failover reproduced it: an nbdkit memory disk
// behind the error filter, mounted as a file with nbdfuse. While the trigger file exists every write to the disk
// fails with EIO; the node's log lives on the mounted file.
using System.Diagnostics;

namespace CloudFs.Tests.EndToEnd;

internal sealed class FaultyDisk : IAsyncDisposable
{
    private static readonly TimeSpan Ready = TimeSpan.FromSeconds(30);
    private readonly string _dir;
    private readonly List<Process> _processes = new();
    // What each process printed on stderr: the reason it gives when it exits early.
    private readonly Dictionary<Process, System.Text.StringBuilder> _stderr = new();
    private string Socket => System.IO.Path.Combine(_dir, "nbd.sock");
    private string Trigger => System.IO.Path.Combine(_dir, "fail-writes");
    private string Mount => System.IO.Path.Combine(_dir, "mnt");

    /// <summary>The file the node uses as its device.</summary>
    public string Path => System.IO.Path.Combine(Mount, "log");

    private FaultyDisk(string dir) => _dir = dir;

    /// <summary>A fresh disk of <paramref name="size"/> (nbdkit syntax, e.g. "512M") mounted under <paramref name="dir"/>.</summary>
    public static async Task<FaultyDisk> StartAsync(string dir, string size)
    {
        var disk = new FaultyDisk(dir);
        Directory.CreateDirectory(disk.Mount);
        try
        {
            disk.Start("nbdkit", "-f", "-U", disk.Socket, "--filter=error", "memory", size,
                "error-pwrite=EIO", "error-pwrite-rate=100%", $"error-pwrite-file={disk.Trigger}");
            await Eventually.Until(() => disk.Running("nbdkit's socket") && File.Exists(disk.Socket), Ready, "nbdkit's socket");
            // nbdfuse serves the mount in the foreground until it is unmounted or killed.
            disk.Start("nbdfuse", disk.Path, "--unix", disk.Socket);
            await Eventually.Until(() => disk.Running("the nbdfuse mount") && File.Exists(disk.Path) && new FileInfo(disk.Path).Length > 0, Ready, "the nbdfuse mount");
            return disk;
        }
        catch
        {
            await disk.DisposeAsync();
            throw;
        }
    }

    private void Start(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(Tool.Require(tool)) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        var stderr = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
        };
        _stderr[process] = stderr;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
    }

    /// <summary>Every write to the disk fails with EIO from now on.</summary>
    public void FailWrites() => File.WriteAllText(Trigger, "");

    /// <summary>Writes work again.</summary>
    public void Heal() => File.Delete(Trigger);

    /// <summary>True while every process of the disk runs; one that exited fails the test at once, before
    /// <paramref name="what"/> appeared.</summary>
    private bool Running(string what)
    {
        if (_processes.FirstOrDefault(p => p.HasExited) is { } gone)
        {
            gone.WaitForExit(); // its stderr read to the end
            string said;
            lock (_stderr[gone]) said = _stderr[gone].ToString().Trim();
            Assert.Fail($"{gone.StartInfo.FileName} exited ({gone.ExitCode}) before {what} appeared (is /dev/fuse there?): {said}");
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await Tool.RunAsync("umount", "-l", Mount);
        // nbdfuse first (it ends with its mount), then nbdkit.
        foreach (var process in Enumerable.Reverse(_processes))
        {
            if (!process.HasExited)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
            process.Dispose();
        }
    }
}
