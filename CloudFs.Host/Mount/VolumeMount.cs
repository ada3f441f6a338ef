// One volume mounted for `cloudfs mount`: the volume's NBD export as a file (nbdfuse, through the contacted node, which
// forwards to the primary), as a block device (a loop device: every I/O 512-byte aligned, as the export requires),
// holding an ext4 file system (mkfs.ext4 on a volume that is still empty) that the kernel mounts under this process's
// staging directory (docs/MOUNT.md says why not fuse2fs). The NBD connection is a read-write attachment (docs/ATTACH.md): when
// another client holds the volume, nbdfuse shows it read-only and the mount is refused with the holder's name. The
// connection reconnects by itself when it breaks (VolumeExport); when the node refuses the mount's attachment (it was
// revoked, or another client took the volume), the mount says so once and the volume's I/O fails from then on.
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace CloudFs.Host.Mount;

internal sealed partial class VolumeMount : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(60);
    private const int ExtMagicOffset = 1080;
    private const int EmptyProbe = 1 << 20;

    private readonly string _volume;
    private readonly string _base;
    private readonly Action<string> _log;
    private FileStream? _hostLock;
    private Process? _nbdfuse;
    private string? _loop;
    private bool _mounted;
    private readonly StringBuilder _output = new();
    private int _disposed;
    // The name of this mount's read-write attachment: its reconnections get its lease back, and only its own.
    private readonly string _attachment = $"mount-{Guid.NewGuid():N}";
    private int _revoked;

    private VolumeMount(string volume, string staging, Action<string> log)
    {
        _volume = volume;
        _base = Path.Combine(staging, volume);
        _log = log;
    }

    private string NbdDirectory => Path.Combine(_base, "nbd");
    private string Image => Path.Combine(NbdDirectory, "nbd");

    /// <summary>Where the volume's file system is mounted: what DIR/&lt;volume&gt; links to.</summary>
    public string FileSystem => Path.Combine(_base, "fs");

    /// <param name="export">The volume's NBD export through the contacted node.</param>
    /// <param name="locks">This host's directory of per-volume locks: one `cloudfs mount` of a volume per host.</param>
    public static async Task<VolumeMount> StartAsync(VolumeExport export, string staging, string locks, Action<string> log)
    {
        var mount = new VolumeMount(export.Volume, staging, log);
        try
        {
            await mount.StartAsync(export, locks).ConfigureAwait(false);
            return mount;
        }
        catch
        {
            await mount.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartAsync(VolumeExport export, string locks)
    {
        Directory.CreateDirectory(locks);
        try { _hostLock = new FileStream(Path.Combine(locks, _volume + ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException)
        {
            throw new MountRefusedException(FuseProtocol.EBusy, $"volume {_volume} is mounted by another `cloudfs mount` on this host; not mounted");
        }
        Directory.CreateDirectory(NbdDirectory);
        Directory.CreateDirectory(FileSystem);

        _nbdfuse = Start("nbdfuse", export.NbdFuseArguments(NbdDirectory, _attachment));
        await WaitMountedAsync(NbdDirectory, _nbdfuse, "nbdfuse").ConfigureAwait(false);
        // nbdfuse shows a read-only export as a file without write permission.
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(Image) & UnixFileMode.UserWrite) == 0)
            throw new MountRefusedException(FuseProtocol.EBusy, $"{await HolderAsync(export.Uri).ConfigureAwait(false)}; not mounted");

        _loop = (await RunAsync("losetup", "--find", "--show", Image).ConfigureAwait(false)).Trim();
        if (!await HasExtFileSystemAsync().ConfigureAwait(false))
        {
            if (!await IsEmptyAsync().ConfigureAwait(false))
                throw new MountRefusedException(FuseProtocol.EIo, $"volume {_volume} holds data that is not an ext2/3/4 file system; not formatting it, not mounted");
            _log($"volume {_volume} is empty: making an ext4 file system on it");
            await RunAsync("mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", "-L", Label(), _loop).ConfigureAwait(false);
        }
        await RunAsync("mount", "-t", "ext4", _loop, FileSystem).ConfigureAwait(false);
        _mounted = true;
    }

    private string Label() => _volume[..Math.Min(16, _volume.Length)];

    /// <summary>Who holds the volume's read-write attachment, as the node describes the read-only export it served.</summary>
    private async Task<string> HolderAsync(string uri)
    {
        try
        {
            var info = await RunAsync("nbdinfo", "--json", uri).ConfigureAwait(false);
            var match = ReadOnlyReason().Match(info);
            if (match.Success) return Regex.Unescape(match.Groups[1].Value);
        }
        catch (MountRefusedException) { }
        return $"volume {_volume} is served read-only (another client holds its read-write attachment)";
    }

    [GeneratedRegex("\"description\":\\s*\"[^\"]*?; read-only: ((?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex ReadOnlyReason();

    private async Task<bool> HasExtFileSystemAsync()
    {
        var probe = new byte[2];
        await using var image = new FileStream(_loop!, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
        image.Position = ExtMagicOffset;
        await image.ReadExactlyAsync(probe).ConfigureAwait(false);
        return probe[0] == 0x53 && probe[1] == 0xEF;
    }

    private async Task<bool> IsEmptyAsync()
    {
        await using var image = new FileStream(Image, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
        var head = new byte[(int)Math.Min(EmptyProbe, image.Length)];
        await image.ReadExactlyAsync(head).ConfigureAwait(false);
        return !head.AsSpan().ContainsAnyExcept((byte)0);
    }

    private Process Start(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(psi) ?? throw new InvalidOperationException(); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new MountRefusedException(FuseProtocol.EIo, $"cannot run {tool} ({e.Message}): install {(tool == "nbdfuse" ? "libnbd-bin" : tool)}");
        }
        process.OutputDataReceived += (_, e) => Output(tool, e.Data);
        process.ErrorDataReceived += (_, e) => Output(tool, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>A line of nbdfuse's (or its nbdkit's): kept for the reason of a failed start (the first lines), and
    /// watched for the node's refusal of the attachment.</summary>
    private void Output(string tool, string? line)
    {
        if (line is null) return;
        lock (_output) if (_output.Length < 16384) _output.AppendLine($"{tool}: {line}");
        if (_mounted && line.Contains(VolumeExport.RefusedLine, StringComparison.Ordinal)) Revoked();
    }

    /// <summary>
    /// The connection broke and the node refused to give this mount its attachment back: `cloudfs detach` revoked it, or
    /// another client took the volume (its lease lapsed while the mount was cut off). What the kernel has not written
    /// back cannot be written any more (the node would refuse it), so nbdfuse is stopped at once rather than left retrying:
    /// the file system stays mounted over a device whose every I/O fails (EIO), until `cloudfs mount` ends. (Not
    /// unmounted now: paths into DIR/VOLUME would then reach the empty staging directory, and writes there would seem to
    /// succeed.)
    /// </summary>
    private void Revoked()
    {
        if (Interlocked.Exchange(ref _revoked, 1) != 0) return;
        _log($"volume {_volume}: the node refused this mount's read-write attachment: it was revoked (`cloudfs detach`) or another client " +
             "took the volume over; its I/O fails (EIO) from now on (what was not fsynced is lost); " +
             "run `cloudfs mount` again to mount it as it is now");
        try { _nbdfuse?.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    private string Output() { lock (_output) return _output.ToString().Trim(); }

    private async Task WaitMountedAsync(string directory, Process process, string tool)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (!IsMountPoint(directory))
        {
            if (process.HasExited)
                throw new MountRefusedException(FuseProtocol.EIo, $"volume {_volume}: {tool} ended ({process.ExitCode}): {Output()}");
            if (DateTime.UtcNow > deadline)
                throw new MountRefusedException(FuseProtocol.EIo, $"volume {_volume}: {tool} did not mount {directory} within {StartTimeout.TotalSeconds:0} s: {Output()}");
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    internal static bool IsMountPoint(string directory)
    {
        var escaped = directory.Replace(" ", "\\040");
        return File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ') is { Length: > 4 } f && f[4] == escaped);
    }

    private static async Task<string> RunAsync(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(psi) ?? throw new InvalidOperationException(); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new MountRefusedException(FuseProtocol.EIo, $"cannot run {tool} ({e.Message})");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var wait = new CancellationTokenSource(StartTimeout);
            try { await process.WaitForExitAsync(wait.Token).ConfigureAwait(false); }
            catch (OperationCanceledException)
            {
                // E.g. a flush the volume does not answer: the access fails rather than hang.
                process.Kill();
                throw new MountRefusedException(FuseProtocol.EIo, $"{tool} {string.Join(' ', args)} did not finish within {StartTimeout.TotalSeconds:0} s");
            }
            if (process.ExitCode != 0)
                throw new MountRefusedException(FuseProtocol.EIo, $"{tool} failed ({process.ExitCode}): {(await stderr.ConfigureAwait(false)).Trim()}");
            return await stdout.ConfigureAwait(false);
        }
    }

    /// <summary>Unmounts the file system (the kernel writes it back), detaches the loop device, flushes the export, then the
    /// export (nbdfuse ends its NBD connections: the attachment is released).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_mounted) await UnmountAsync(FileSystem).ConfigureAwait(false);
        if (_loop is not null)
        {
            // The kernel wrote the file system back at its unmount; the loop device's writes are in the export file's
            // page cache until it is flushed: fsync sends the NBD FLUSH, and the primary has them durably.
            try { await RunAsync("losetup", "--detach", _loop).ConfigureAwait(false); }
            catch (MountRefusedException e) { _log($"volume {_volume}: {e.Message}"); }
        }
        if (_nbdfuse is not null && !_nbdfuse.HasExited && Volatile.Read(ref _revoked) == 0)
        {
            try
            {
                using var image = new FileStream(Image, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                image.Flush(flushToDisk: true);
            }
            catch (IOException e) { _log($"volume {_volume}: flushing the export failed: {e.Message}"); }
        }
        await StopNbdFuseAsync().ConfigureAwait(false);
        foreach (var directory in new[] { FileSystem, NbdDirectory, _base })
            try { Directory.Delete(directory); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _hostLock?.Dispose();
    }

    private async Task UnmountAsync(string directory)
    {
        if (!IsMountPoint(directory)) return;
        try { await RunAsync("umount", directory).ConfigureAwait(false); }
        catch (MountRefusedException e)
        {
            // Still in use (a shell's working directory): detached now, written back when the last user leaves.
            _log($"volume {_volume}: {e.Message}; detaching {directory} lazily");
            try { await RunAsync("umount", "-l", directory).ConfigureAwait(false); } catch (MountRefusedException) { }
        }
    }

    private async Task StopNbdFuseAsync()
    {
        if (_nbdfuse is null) return;
        if (!_nbdfuse.HasExited) await UnmountAsync(NbdDirectory).ConfigureAwait(false);
        using var wait = new CancellationTokenSource(StopTimeout);
        try { await _nbdfuse.WaitForExitAsync(wait.Token).ConfigureAwait(false); }
        catch (OperationCanceledException)
        {
            _log($"volume {_volume}: nbdfuse did not end within {StopTimeout.TotalSeconds:0} s of its unmount; killing it");
            _nbdfuse.Kill();
        }
        _nbdfuse.Dispose();
        // An nbdfuse that was stopped (the attachment was refused) leaves its mount behind, disconnected.
        if (IsMountPoint(NbdDirectory))
            try { await RunAsync("umount", "-l", NbdDirectory).ConfigureAwait(false); } catch (MountRefusedException) { }
    }
}
