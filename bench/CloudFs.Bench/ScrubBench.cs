// scrub: the bandwidth of an unthrottled scrub (LogStore.ScrubAsync) over a log holding --bytes of live data written in
// --write sized writes. The log is filled once (kept with --reuse yes, so rounds alternate with fio on the same file
// system without refilling); each run opens it and scrubs it whole. Goal: >= 0.5x fio's O_DIRECT sequential read.
using System.Diagnostics;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class ScrubBench
{
    public static void RegisterSelf() => Program.Register("scrub", "unthrottled scrub of a filled log: --path FILE --size 4G --bytes 3G --write 1M [--reuse yes] [--depth 4]", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var bytes = BenchArgs.Size(BenchArgs.Get(args, "bytes", "3G"));
        var write = (int)BenchArgs.Size(BenchArgs.Get(args, "write", "1M"));
        var reuse = BenchArgs.Get(args, "reuse", "no") == "yes";
        var depth = int.Parse(BenchArgs.Get(args, "depth", "4"));
        if (!reuse || !File.Exists(path)) Fill(path, size, bytes, write);
        using var store = LogStore.Open(new LogStoreOptions { Path = path, CreateSize = size });
        store.Scrubber.ReadsInFlight = depth;
        var sw = Stopwatch.StartNew();
        var result = store.Scrubber.ScrubAsync(new ScrubOptions()).GetAwaiter().GetResult();
        sw.Stop();
        if (result.BadBlocks != 0) throw new InvalidOperationException($"the scrub found {result.BadBlocks} bad blocks in a fresh log");
        var seconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"RESULT scrub {result.BytesVerified / seconds / 1e6:F1} MB/s ({result.BytesVerified >> 20} MiB live verified, {result.BytesRead >> 20} MiB read, {seconds:F2} s, {depth} read(s) in flight, direct I/O {store.IsDirectIo})");
        return 0;
    }

    private static void Fill(string path, long size, long bytes, int write)
    {
        using var store = BenchArgs.FreshStore(path, size);
        var vol = store.CreateVolumeAsync(bytes, VolumeMode.Async, []).GetAwaiter().GetResult().BaseId;
        var data = new byte[write];
        Random.Shared.NextBytes(data);
        var inflight = new List<Task>();
        for (long off = 0; off < bytes; off += write)
        {
            inflight.Add(store.WriteAsync(vol, off, data).AsTask());
            if (inflight.Count == 16) { Task.WaitAll(inflight.ToArray()); inflight.Clear(); }
        }
        Task.WaitAll(inflight.ToArray());
        store.FlushAsync().AsTask().GetAwaiter().GetResult();
    }
}
