// recovery: time to Open a log filled with writes and periodic checkpoints, after a crash (no checkpoint at close),
// so Open = load the newest checkpoint + roll forward what was appended since. Goal: <= 2 s for 4 GiB.
using System.Diagnostics;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class RecoveryBench
{
    public static void RegisterSelf() => Program.Register("recovery", "open time of a filled log after a crash: --path FILE --size 4G --fill 0.9", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var fill = double.Parse(BenchArgs.Get(args, "fill", "0.9"));
        var keep = BenchArgs.Get(args, "keep", "no") == "yes";
        const int chunk = 64 << 10;
        var volSize = 1L << 30;
        long entries = 0;
        var fillTime = Stopwatch.StartNew();
        var store = BenchArgs.FreshStore(path, size);
        var vol = store.CreateVolumeAsync(volSize, VolumeMode.Async, []).GetAwaiter().GetResult().BaseId;
        var data = new byte[chunk];
        Random.Shared.NextBytes(data);
        var rnd = new Random(1);
        var target = (long)(size * fill);
        var inflight = new List<Task>();
        // 64 KiB writes at random offsets: many entries and extents, as after real use.
        while ((long)store.Usage.UsedBytes < target)
        {
            for (var i = 0; i < 256; i++)
            {
                inflight.Add(store.WriteAsync(vol, rnd.NextInt64(volSize / chunk) * chunk, data).AsTask());
                entries++;
            }
            Task.WaitAll(inflight.ToArray());
            inflight.Clear();
            store.MaybeCheckpointAsync().GetAwaiter().GetResult();
        }
        store.FlushAsync().AsTask().GetAwaiter().GetResult();
        store.CloseWithoutCheckpoint();
        fillTime.Stop();
        var sw = Stopwatch.StartNew();
        using (var again = LogStore.Open(new LogStoreOptions { Path = path, CreateSize = size }))
        {
            sw.Stop();
            var r = again.LastRecovery;
            Console.WriteLine($"RESULT recovery {sw.Elapsed.TotalSeconds:F3} s (log {size >> 20} MiB, {entries} entries, used {again.Usage.UsedBytes >> 20} MiB; checkpoint gen {r.Generation}, {r.EntriesReplayed} entries rolled forward; fill took {fillTime.Elapsed.TotalSeconds:F1} s)");
            again.CloseWithoutCheckpoint();
        }
        if (!keep) BenchArgs.Cleanup(path);
        return 0;
    }
}
