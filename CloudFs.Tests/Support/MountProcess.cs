// One real `./cloudfs mount DIR --contact NODE` process for the end-to-end tests: ready when it prints its mounted
// line, stopped with SIGTERM (every volume unmounted and flushed before it exits).
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace CloudFs.Tests.Support;

internal sealed partial class MountProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Directory { get; }
    public string Output { get { lock (_output) return _output.ToString(); } }
    public bool HasExited => _process.HasExited;

    private MountProcess(string directory, string contact, string[] extra)
    {
        Directory = directory;
        var psi = new ProcessStartInfo(Repo.CloudFsScript)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Repo.Root,
        };
        foreach (var a in new[] { "mount", directory, "--contact", contact }.Concat(extra)) psi.ArgumentList.Add(a);
        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_output) _output.AppendLine(e.Data);
            if (e.Data.StartsWith("cloudfs: mounted ", StringComparison.Ordinal)) _ready.TrySetResult();
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException($"cloudfs mount exited ({_process.ExitCode}) before it was ready"));
    }

    /// <summary>Starts `cloudfs mount` on <paramref name="directory"/> (made if missing) and waits until it serves.</summary>
    /// <param name="extra">More arguments (e.g. --tls DIR).</param>
    public static async Task<MountProcess> StartAsync(string directory, string contact, params string[] extra)
    {
        Tool.Require("nbdfuse");
        Tool.Require("nbdkit");
        Tool.Require("mkfs.ext4");
        Tool.Require("losetup");
        System.IO.Directory.CreateDirectory(directory);
        var mount = new MountProcess(directory, contact, extra);
        mount._process.Start();
        mount._process.BeginOutputReadLine();
        mount._process.BeginErrorReadLine();
        try { await mount._ready.Task.WaitAsync(TimeSpan.FromSeconds(120)); }
        catch (Exception e)
        {
            await mount.DisposeAsync();
            Assert.Fail($"cloudfs mount {directory} did not come up: {e.Message}\n{mount.Output}");
        }
        return mount;
    }

    /// <summary>DIR/<paramref name="volume"/>/<paramref name="path"/>: the first access mounts the volume.</summary>
    public string PathOf(string volume, string path = "") => Path.Combine(Directory, volume, path);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    /// <summary>SIGTERM, then waits for the exit; returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (!_process.HasExited)
        {
            SysKill(_process.Id, 15);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                Assert.Fail($"cloudfs mount {Directory} did not end within 120 s of SIGTERM\n{Output}");
            }
        }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync(); }
        catch (Exception) { /* the test already failed */ }
        _process.Dispose();
    }
}
