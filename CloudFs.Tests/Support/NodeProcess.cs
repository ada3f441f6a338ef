// One real `./cloudfs node` process for the end-to-end tests: started on its own loopback address with the
// default ports, ready when it prints its ready line, stopped with SIGTERM or killed with SIGKILL.
using System.Diagnostics;
using System.Net.Http;
using System.Runtime.InteropServices;
using System.Text;

namespace CloudFs.Tests.Support;

public sealed partial class NodeProcess : IAsyncDisposable
{
    // Generous: the first start may build the Release host while other test classes compete for 2 cores.
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(300);

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Listen { get; }
    public string Device { get; }
    public string ReadyLine { get; private set; } = "";
    /// <summary>The host id the ready line names.</summary>
    public string HostId { get; private set; } = "";
    public string HttpBase => $"http://{Listen}:8090";
    public string Nbd(string volume) => $"nbd://{Listen}:10809/{volume}";
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>The last <paramref name="max"/> WARN and ERROR lines this node printed: what a failing test shows.</summary>
    public string Warnings(int max = 30) =>
        string.Join('\n', Stderr.Split('\n').Where(l => l.Contains(" WARN", StringComparison.Ordinal) || l.Contains(" ERROR", StringComparison.Ordinal)).TakeLast(max));
    /// <summary>The node's --tls directory (null without): the CLI calls of these helpers present it.</summary>
    public string? Tls { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    private NodeProcess(string listen, string device, IEnumerable<string> extra, string? netns = null)
    {
        Listen = listen;
        Device = device;
        var args = extra.ToArray();
        var tls = Array.IndexOf(args, "--tls");
        Tls = tls >= 0 && tls + 1 < args.Length ? args[tls + 1] : null;
        // In a network namespace: `ip netns exec NS ./cloudfs ...` execs the script in place, so the process (and
        // its pid for SIGTERM/SIGKILL) is the node itself.
        var psi = new ProcessStartInfo(netns is null ? Repo.CloudFsScript : Tool.Require("ip"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Repo.Root,
        };
        if (netns is not null) foreach (var a in new[] { "netns", "exec", netns, Repo.CloudFsScript }) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "node", "--listen", listen, "--device", device }.Concat(extra)) psi.ArgumentList.Add(a);
        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr) _stderr.Append("[stdout] ").AppendLine(e.Data);
            if (e.Data.StartsWith("cloudfs: node ", StringComparison.Ordinal) && e.Data.Contains(" ready (", StringComparison.Ordinal))
                _ready.TrySetResult(e.Data);
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException($"the node exited ({_process.ExitCode}) before it was ready"));
    }

    /// <summary>Starts the node and waits for its ready line; fails with the node's output when it does not come.</summary>
    public static Task<NodeProcess> StartAsync(string listen, string device, params string[] extra) =>
        StartInAsync(null, listen, device, extra);

    /// <summary>As <see cref="StartAsync"/>, inside network namespace <paramref name="netns"/> (null: this one).
    /// Run `./cloudfs --help` first so that the build happens outside the namespace.</summary>
    public static async Task<NodeProcess> StartInAsync(string? netns, string listen, string device, params string[] extra)
    {
        var node = LaunchIn(netns, listen, device, extra);
        await node.WaitReadyAsync();
        return node;
    }

    /// <summary>Starts the node without waiting for it (<see cref="WaitReadyAsync"/> does).</summary>
    public static NodeProcess Launch(string listen, string device, params string[] extra) => LaunchIn(null, listen, device, extra);

    private static NodeProcess LaunchIn(string? netns, string listen, string device, string[] extra)
    {
        var args = extra.Contains("--size") ? extra : [.. extra, "--size", "1G"];
        var node = new NodeProcess(listen, device, args, netns);
        node._process.Start();
        node._process.BeginOutputReadLine();
        node._process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Waits for the node's ready line; fails with the node's output (and stops it) when it does not come.</summary>
    public async Task WaitReadyAsync()
    {
        try
        {
            ReadyLine = await _ready.Task.WaitAsync(ReadyTimeout);
        }
        catch (Exception e)
        {
            await DisposeAsync();
            Assert.Fail($"node on {Listen} did not become ready: {e.Message}\n{Stderr}");
        }
        HostId = ReadyHostId().Match(ReadyLine).Groups[1].Value;
    }

    /// <summary>Starts a node that is expected to refuse to start; returns its exit code and stderr.</summary>
    public static async Task<(int Code, string Stderr)> StartExpectingFailureAsync(string listen, string device, params string[] extra)
    {
        var node = new NodeProcess(listen, device, extra.Contains("--size") ? extra : [.. extra, "--size", "1G"]);
        node._process.Start();
        node._process.BeginOutputReadLine();
        node._process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(ReadyTimeout);
        var exited = node._process.WaitForExitAsync(cts.Token);
        var first = await Task.WhenAny(exited, node._ready.Task);
        if (first == node._ready.Task && node._ready.Task.IsCompletedSuccessfully)
        {
            await node.DisposeAsync();
            Assert.Fail($"the node on {listen} started although it should have refused:\n{node.Stderr}");
        }
        await exited;
        node._process.WaitForExit(); // drains the output events
        return (node._process.ExitCode, node.Stderr);
    }

    [System.Text.RegularExpressions.GeneratedRegex("^cloudfs: node ([0-9a-f]{40}) ready")]
    private static partial System.Text.RegularExpressions.Regex ReadyHostId();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    /// <summary>SIGTERM, then waits for a clean exit; returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (_process.HasExited) return _process.ExitCode;
        SysKill(_process.Id, 15);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail($"the node on {Listen} did not stop within 60 s of SIGTERM\n{Stderr}");
        }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>kill -9: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited) return;
        SysKill(_process.Id, 9);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGSTOP: the process stalls completely (no thread runs), as under a long CPU or I/O stall.</summary>
    public void Pause() => SysKill(_process.Id, 19);

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => SysKill(_process.Id, 18);

    public async Task<string> HeadsAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        return await http.GetStringAsync($"{HttpBase}/heads");
    }

    /// <summary>The /heads line of one volume ("base:current").</summary>
    public async Task<string> HeadAsync(string volume)
    {
        var heads = await HeadsAsync();
        var line = heads.Split('\n').FirstOrDefault(l => l.StartsWith(volume + ":", StringComparison.Ordinal));
        Assert.True(line is not null, $"volume {volume} is not in /heads of {Listen}:\n{heads}");
        return line!;
    }

    /// <summary>`cloudfs newdisk 1 --size SIZE` against this node (with its --tls directory); returns the volume id.</summary>
    public async Task<string> NewDiskAsync(string size = "64M")
    {
        var result = (await Tool.CloudFs(["newdisk", "1", "--size", size, "--contact", Listen, .. Tls is null ? [] : new[] { "--tls", Tls }])).AssertOk();
        var id = result.Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", id);
        return id;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                SysKill(_process.Id, 15);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try { await _process.WaitForExitAsync(cts.Token); }
                catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); }
            }
        }
        catch (InvalidOperationException) { /* never started */ }
        _process.Dispose();
        // To see where a slow or failed run spent its time: CLOUDFS_TEST_NODE_LOGS=DIR keeps every node's output there.
        if (Environment.GetEnvironmentVariable("CLOUDFS_TEST_NODE_LOGS") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            await File.WriteAllTextAsync(Path.Combine(dir, $"{DateTime.UtcNow:HHmmss.fff}-{Listen}.log"), Stderr);
        }
    }
}
