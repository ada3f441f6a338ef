// split: time of SplitForkAsync on a volume of many small entries (the rewound index is rebuilt from the headers of
// every kept entry), and of reopening after a crash right after it (the rewind is replayed, rebuilding it again).
using System.Diagnostics;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class SplitBench
{
    public static void RegisterSelf() => Program.Register("split", "fork split of a volume with many 4 KiB entries: --path FILE --size 4G --entries 100000", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var count = long.Parse(BenchArgs.Get(args, "entries", "100000"));
        const int block = 4096;
        const long volSize = 1L << 30;
        var store = BenchArgs.FreshStore(path, size);
        var vol = store.CreateVolumeAsync(volSize, VolumeMode.Async, []).GetAwaiter().GetResult().BaseId;
        var data = new byte[block];
        Random.Shared.NextBytes(data);
        var rnd = new Random(1);
        var inflight = new List<Task>();
        for (long i = 0; i < count; i++)
        {
            inflight.Add(store.WriteAsync(vol, rnd.NextInt64(volSize / block) * block, data).AsTask());
            if (inflight.Count < 256) continue;
            Task.WaitAll(inflight.ToArray());
            inflight.Clear();
        }
        Task.WaitAll(inflight.ToArray());
        store.Checkpoints.WriteAsync().GetAwaiter().GetResult();
        var keep = store.GetVolume(vol)!.Lsn - 10;
        var sw = Stopwatch.StartNew();
        store.SplitForkAsync(vol, keep).GetAwaiter().GetResult();
        var split = sw.Elapsed.TotalSeconds;
        store.CloseWithoutCheckpoint();
        sw.Restart();
        using (var again = LogStore.Open(new LogStoreOptions { Path = path, CreateSize = size }))
        {
            var reopen = sw.Elapsed.TotalSeconds;
            if (again.GetVolume(vol)!.Lsn != keep) throw new InvalidOperationException("the rewind was not replayed");
            Console.WriteLine($"RESULT split {split:F3} s (rebuilt the index of {keep} entries; reopen replaying the rewind {reopen:F3} s)");
            again.CloseWithoutCheckpoint();
        }
        BenchArgs.Cleanup(path);
        return 0;
    }
}
