// append-4k: 4 KiB appends from 32 concurrent writers, each durable (group commit shares one fdatasync per batch)
// — compare with fio 4k randwrite QD32 libaio O_DIRECT IOPS.
using System.Diagnostics;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class AppendSmallBench
{
    public static void RegisterSelf() => Program.Register("append-4k", "4 KiB durable appends from 32 writers: --path FILE --size 4G --seconds 10", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var seconds = double.Parse(BenchArgs.Get(args, "seconds", "10"));
        const int writers = 32, block = 4096;
        using var store = BenchArgs.FreshStore(path, size);
        const long volSize = 1L << 30;
        var vol = store.CreateVolumeAsync(volSize, VolumeMode.Sync, []).GetAwaiter().GetResult().BaseId;
        long ops = 0;
        var stop = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var rnd = new Random(w);
            var data = new byte[block];
            rnd.NextBytes(data);
            long mine = 0;
            while (stop.Elapsed.TotalSeconds < seconds)
            {
                var off = rnd.NextInt64(volSize / block) * block;
                await store.WriteAsync(vol, off, data, durable: true);
                mine++;
            }
            Interlocked.Add(ref ops, mine);
        })).ToArray();
        Task.WaitAll(tasks);
        var elapsed = stop.Elapsed.TotalSeconds;
        Console.WriteLine($"RESULT append-4k {ops / elapsed:F0} IOPS ({ops} durable appends in {elapsed:F2} s, direct={store.IsDirectIo})");
        Console.Error.WriteLine($"writer: {store.WriterStats}");
        store.CloseWithoutCheckpoint();
        BenchArgs.Cleanup(path);
        return 0;
    }
}
