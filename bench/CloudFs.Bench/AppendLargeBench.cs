// append-1m: 1 MiB appends (16 in flight, made durable at the end) — compare with fio seq write 1M QD16 O_DIRECT.
using System.Diagnostics;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class AppendLargeBench
{
    public static void RegisterSelf() => Program.Register("append-1m", "1 MiB appends, 16 in flight, durable at the end: --path FILE --size 4G --bytes 3G", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var total = BenchArgs.Size(BenchArgs.Get(args, "bytes", "3G"));
        const int depth = 16, chunk = 1 << 20;
        using var store = BenchArgs.FreshStore(path, size);
        var vol = store.CreateVolumeAsync(total, VolumeMode.Async, []).GetAwaiter().GetResult().BaseId;
        // QD16 like fio: 16 submitters, each with one 1 MiB append in flight; the digests and CRCs of different
        // entries are computed on different cores (in the caller, before the chain lock), the writer packs them.
        var sw = Stopwatch.StartNew();
        var chunks = total / chunk;
        var tasks = Enumerable.Range(0, depth).Select(k => Task.Run(async () =>
        {
            var data = new byte[chunk];
            new Random(k).NextBytes(data);
            for (long c = k; c < chunks; c += depth) await store.WriteAsync(vol, c * chunk, data);
        })).ToArray();
        Task.WaitAll(tasks);
        store.FlushAsync().AsTask().GetAwaiter().GetResult();
        sw.Stop();
        var mbs = total / sw.Elapsed.TotalSeconds / 1e6;
        Console.WriteLine($"RESULT append-1m {mbs:F1} MB/s ({total >> 20} MiB in {sw.Elapsed.TotalSeconds:F2} s, direct={store.IsDirectIo})");
        Console.Error.WriteLine($"writer: {store.WriterStats}");
        store.CloseWithoutCheckpoint();
        BenchArgs.Cleanup(path);
        return 0;
    }
}
