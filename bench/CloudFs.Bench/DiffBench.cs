// diff: ChangedBetweenAsync (`cloudfs diff`, the changed-since context) on a big thin volume with BYTES written since
// the version diffed from, in WRITE-sized writes at random aligned offsets, after BEFORE bytes written before it. The
// cost follows the entries written since FROM, not the volume's size: timed as written (the lsn table knows each
// entry's range), and after a restart (with the log's pages dropped from the page cache where the kernel lets it: the
// checkpoint's changes section knows each entry's range; a checkpoint without it leaves the headers to read once), then
// again. The restart's open is timed too (the checkpoint carries 16 bytes an entry of lsn table, and the changes).
using System.Diagnostics;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class DiffBench
{
    public static void RegisterSelf() => Program.Register("diff",
        "changed ranges since a version: --path FILE --size 4G --volume 1T --bytes 1G --write 1M --before 256M", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var volSize = BenchArgs.Size(BenchArgs.Get(args, "volume", "1T"));
        var bytes = BenchArgs.Size(BenchArgs.Get(args, "bytes", "1G"));
        var write = (int)BenchArgs.Size(BenchArgs.Get(args, "write", "1M"));
        var before = BenchArgs.Size(BenchArgs.Get(args, "before", "256M"));
        var store = BenchArgs.FreshStore(path, size);
        var vol = store.CreateVolumeAsync(volSize, VolumeMode.Async, []).GetAwaiter().GetResult().BaseId;
        var data = new byte[write];
        Random.Shared.NextBytes(data);
        var rnd = new Random(1);
        void Fill(long total)
        {
            var inflight = new List<Task>();
            for (long done = 0; done < total; done += write)
            {
                inflight.Add(store.WriteAsync(vol, rnd.NextInt64(volSize / write) * write, data).AsTask());
                if (inflight.Count < 64) continue;
                Task.WaitAll(inflight.ToArray());
                inflight.Clear();
            }
            Task.WaitAll(inflight.ToArray());
        }
        Fill(before);
        var from = store.GetVolume(vol)!.CurrentVersion;
        var sw = Stopwatch.StartNew();
        Fill(bytes);
        var filled = sw.Elapsed.TotalSeconds;
        store.FlushAsync().GetAwaiter().GetResult();
        var entries = store.GetVolume(vol)!.Lsn;
        sw.Restart();
        var live = store.Streams.ChangedBetweenAsync(vol, from).GetAwaiter().GetResult();
        var liveS = sw.Elapsed.TotalSeconds;
        // After a restart: what the checkpoint knows of each entry's range (or, without it, their headers read once).
        store.Dispose();
        DropPageCache(path);
        sw.Restart();
        store = LogStore.Open(new LogStoreOptions { Path = path, CreateSize = size });
        var openS = sw.Elapsed.TotalSeconds;
        DropPageCache(path);
        sw.Restart();
        var cold = store.Streams.ChangedBetweenAsync(vol, from).GetAwaiter().GetResult();
        var coldS = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var again = store.Streams.ChangedBetweenAsync(vol, from).GetAwaiter().GetResult();
        var againS = sw.Elapsed.TotalSeconds;
        if (cold.Bytes != live.Bytes || again.Bytes != live.Bytes) throw new InvalidOperationException("diffs of the same versions differ");
        Console.WriteLine($"RESULT diff {liveS:F3} s ({Human(volSize)} volume, {Human(bytes)} written since FROM in {Human(write)} writes, " +
                          $"{entries} entries in all, {live.Ranges.Count} ranges, {live.Bytes} bytes changed; after a restart: first diff " +
                          $"{coldS:F3} s (page cache dropped), then {againS:F3} s; the restart's open {openS:F3} s; writing took {filled:F1} s)");
        store.Dispose();
        BenchArgs.Cleanup(path);
        return 0;
    }

    private static string Human(long b) =>
        b >= 1L << 40 ? $"{b >> 40} TiB" : b >= 1L << 30 ? $"{b >> 30} GiB" : b >= 1L << 20 ? $"{b >> 20} MiB" : $"{b >> 10} KiB";

    /// <summary>Asks the kernel to drop the file's cached pages (posix_fadvise DONTNEED through dd), best effort.</summary>
    private static void DropPageCache(string path)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("dd", [$"if={path}", "iflag=nocache", "count=0", "status=none"]) { RedirectStandardError = true });
            p?.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception) { }
    }
}
