// A loop device (losetup, root) over a sparse file, for running the engine on a real block device with O_DIRECT.
using System.Diagnostics;

namespace CloudFs.Tests.Engine;

/// <summary>A fact that is skipped only where losetup is missing or not permitted, saying which.</summary>
public sealed class LoopDeviceFactAttribute : FactAttribute
{
    public LoopDeviceFactAttribute()
    {
        if (LoopDevice.Unavailable() is { } reason) Skip = reason;
    }
}

internal sealed class LoopDevice : IDisposable
{
    private readonly string _backing;
    public string Path { get; }
    public string Dir { get; }

    public static string? Unavailable()
    {
        var losetup = new[] { "/usr/sbin/losetup", "/sbin/losetup", "/usr/bin/losetup" }.FirstOrDefault(File.Exists);
        if (losetup is null) return "losetup is not installed (package mount)";
        if (Environment.UserName != "root" && !OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("USER") != "root")
            return "losetup needs root, and the tests do not run as root";
        if (!File.Exists("/dev/loop-control")) return "losetup is not permitted here: /dev/loop-control is missing";
        return null;
    }

    public LoopDevice(long size)
    {
        Dir = Directory.CreateTempSubdirectory("cloudfs-loop-").FullName;
        _backing = System.IO.Path.Combine(Dir, "backing");
        using (var fs = new FileStream(_backing, FileMode.CreateNew)) fs.SetLength(size);
        Path = Run("losetup", $"-f --show {_backing}").Trim();
        Assert.StartsWith("/dev/loop", Path);
    }

    private static string Run(string tool, string args)
    {
        var psi = new ProcessStartInfo(tool, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} {args} failed: {error.Trim()}");
        return output;
    }

    public void Poke(long offset, byte[] bytes)
    {
        using var fs = new FileStream(Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        fs.Position = offset;
        fs.Write(bytes);
        fs.Flush(true);
    }

    public void Dispose()
    {
        try { Run("losetup", $"-d {Path}"); } catch (InvalidOperationException) { }
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}
