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
        var data = new byte[depth][];
        for (var i = 0; i < depth; i++) { data[i] = new byte[chunk]; Random.Shared.NextBytes(data[i]); }
        var sw = Stopwatch.StartNew();
        var inflight = new Task[depth];
        long offset = 0;
        var slot = 0;
        for (; offset < total; offset += chunk, slot = (slot + 1) % depth)
        {
            if (inflight[slot] is { } t) t.GetAwaiter().GetResult();
            inflight[slot] = store.WriteAsync(vol, offset, data[slot]).AsTask();
        }
        Task.WaitAll(inflight.Where(t => t is not null).ToArray());
        store.FlushAsync().AsTask().GetAwaiter().GetResult();
        sw.Stop();
        var mbs = total / sw.Elapsed.TotalSeconds / 1e6;
        Console.WriteLine($"RESULT append-1m {mbs:F1} MB/s ({total >> 20} MiB in {sw.Elapsed.TotalSeconds:F2} s, direct={store.IsDirectIo})");
        store.CloseWithoutCheckpoint();
        BenchArgs.Cleanup(path);
        return 0;
    }
}
