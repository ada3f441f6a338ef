// follow-4k: a sync volume with one replica at engine level. 32 writers append 4 KiB durably to a primary store and a
// write counts only once a follower store (same disk, fed by the primary's live stream through a pipe and
// ApplyLiveAsync) reports it durable. The same shape without the follower runs alternately in the same process.
using System.Diagnostics;
using System.IO.Pipelines;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class FollowBench
{
    public static void RegisterSelf() =>
        Program.Register("follow-4k", "4 KiB durable appends acknowledged by a live follower vs none: --path FILE --size 4G --seconds 10 --rounds 3", Run);

    private const int Writers = 32, Block = 4096;
    private const long VolSize = 1L << 30;

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var seconds = double.Parse(BenchArgs.Get(args, "seconds", "10"));
        var rounds = int.Parse(BenchArgs.Get(args, "rounds", "3"));
        var plain = new List<double>();
        var followed = new List<double>();
        var p50 = new List<double>();
        var p99 = new List<double>();
        for (var r = 0; r < rounds; r++)
        {
            plain.Add(Measure(path, size, seconds, follow: false).Iops);
            var f = Measure(path, size, seconds, follow: true);
            followed.Add(f.Iops);
            p50.Add(f.P50Ms);
            p99.Add(f.P99Ms);
            Console.Error.WriteLine($"round {r + 1}: alone {plain[^1]:F0} IOPS, followed {f.Iops:F0} IOPS (replica ack p50 {f.P50Ms:F2} ms, p99 {f.P99Ms:F2} ms)");
        }
        static double Median(List<double> x) { var s = x.Order().ToList(); return s[s.Count / 2]; }
        Console.WriteLine($"RESULT follow-4k {Median(followed):F0} IOPS (alone {Median(plain):F0} IOPS, ratio {Median(followed) / Median(plain):F2}, " +
                          $"replica ack p50 {Median(p50):F2} ms p99 {Median(p99):F2} ms, median of {rounds})");
        return 0;
    }

    private static (double Iops, double P50Ms, double P99Ms) Measure(string path, long size, double seconds, bool follow)
    {
        var replicaPath = path + ".replica";
        using var primary = BenchArgs.FreshStore(path, size);
        using var replica = follow ? BenchArgs.FreshStore(replicaPath, size) : null;
        var vol = primary.CreateVolumeAsync(VolSize, VolumeMode.Sync, []).GetAwaiter().GetResult().BaseId;
        using var cts = new CancellationTokenSource();
        var acks = new ReplicaAcks();
        Task sending = Task.CompletedTask, applying = Task.CompletedTask;
        if (replica is not null)
        {
            var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 64 << 20, resumeWriterThreshold: 32 << 20));
            sending = primary.Streams.StreamAsync(vol, 0, pipe.Writer.AsStream(), follow: true, cts.Token);
            applying = replica.Streams.ApplyLiveAsync(pipe.Reader.AsStream(), p => acks.Durable(p.Lsn), cts.Token);
        }
        var latencies = new List<double>[Writers];
        long ops = 0;
        var stop = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            var rnd = new Random(w);
            var data = new byte[Block];
            rnd.NextBytes(data);
            var mine = latencies[w] = new List<double>();
            while (stop.Elapsed.TotalSeconds < seconds)
            {
                var t0 = Stopwatch.GetTimestamp();
                var off = rnd.NextInt64(VolSize / Block) * Block;
                var done = await primary.WriteAsync(vol, off, data, durable: true);
                if (follow) await acks.WaitFor(done.Lsn);
                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            Interlocked.Add(ref ops, mine.Count);
        })).ToArray();
        Task.WaitAll(tasks);
        var elapsed = stop.Elapsed.TotalSeconds;
        cts.Cancel();
        try { Task.WaitAll(sending, applying); } catch (AggregateException) { }
        if (follow) Console.Error.WriteLine($"replica writer: {replica!.WriterStats}");
        replica?.CloseWithoutCheckpoint();
        primary.CloseWithoutCheckpoint();
        BenchArgs.Cleanup(path);
        BenchArgs.Cleanup(replicaPath);
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return (ops / elapsed, all[all.Length / 2], all[(int)(all.Length * 0.99)]);
    }

    /// <summary>Writers waiting for the follower to report their lsn durable.</summary>
    private sealed class ReplicaAcks
    {
        private readonly object _gate = new();
        private readonly PriorityQueue<TaskCompletionSource, long> _waiting = new();
        private long _durable;

        public Task WaitFor(long lsn)
        {
            lock (_gate)
            {
                if (lsn <= _durable) return Task.CompletedTask;
                var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Enqueue(tcs, lsn);
                return tcs.Task;
            }
        }

        public void Durable(long lsn)
        {
            lock (_gate)
            {
                _durable = lsn;
                while (_waiting.TryPeek(out var tcs, out var at) && at <= lsn) { _waiting.Dequeue(); tcs.TrySetResult(); }
            }
        }
    }
}
