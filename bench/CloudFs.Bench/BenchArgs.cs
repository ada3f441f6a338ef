// Tiny "--name value" argument reading shared by the benchmarks, and the fresh-log helper they all start from.
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class BenchArgs
{
    public static string Get(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, "--" + name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    public static long Size(string text)
    {
        var t = text.Trim().ToUpperInvariant();
        long mul = t.EndsWith('T') ? 1L << 40 : t.EndsWith('G') ? 1L << 30 : t.EndsWith('M') ? 1L << 20 : t.EndsWith('K') ? 1L << 10 : 1;
        return long.Parse(mul == 1 ? t : t[..^1]) * mul;
    }

    /// <summary>A store on a freshly created sparse file (any previous file and key file removed).</summary>
    public static LogStore FreshStore(string path, long size, long checkpointBytes = 256L << 20)
    {
        File.Delete(path);
        File.Delete(path + ".keys");
        // Allocated up front like fio's own file (fio fallocates it), so both sides write into allocated blocks.
        using (var p = System.Diagnostics.Process.Start("fallocate", ["-l", size.ToString(), path])) p.WaitForExit();
        return LogStore.Open(new LogStoreOptions { Path = path, CreateSize = size, CheckpointBytes = checkpointBytes });
    }

    public static void Cleanup(string path)
    {
        File.Delete(path);
        File.Delete(path + ".keys");
    }
}
