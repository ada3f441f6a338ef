// resync: moving a written volume to a fresh replica store by full resync (1 MiB pieces, Resync.ReadAsync →
// Resync.ApplyAsync) against replaying its whole stream (StreamAsync → ApplyAsync), alternately, on the same disk.
using System.Diagnostics;
using System.IO.Pipelines;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class ResyncBench
{
    public static void RegisterSelf() =>
        Program.Register("resync", "full resync vs stream replay of a written volume: --path FILE --size 4G --bytes 256M --rounds 3", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var bytes = BenchArgs.Size(BenchArgs.Get(args, "bytes", "256M"));
        var rounds = int.Parse(BenchArgs.Get(args, "rounds", "3"));
        var replicaPath = path + ".replica";
        using var primary = BenchArgs.FreshStore(path, size);
        // Written twice over (64 KiB random writes): the stream carries both passes, the resync only what is live.
        var vol = primary.CreateVolumeAsync(bytes, VolumeMode.Sync, []).GetAwaiter().GetResult().BaseId;
        var rnd = new Random(1);
        var data = new byte[64 << 10];
        for (var pass = 0; pass < 2; pass++)
            for (long off = 0; off < bytes; off += data.Length)
            {
                rnd.NextBytes(data);
                primary.WriteAsync(vol, off, data).AsTask().GetAwaiter().GetResult();
            }
        primary.FlushAsync().AsTask().GetAwaiter().GetResult();
        var streamed = new List<double>();
        var resynced = new List<double>();
        for (var r = 0; r < rounds; r++)
        {
            streamed.Add(Measure(primary, vol, replicaPath, size, bytes, resync: false));
            resynced.Add(Measure(primary, vol, replicaPath, size, bytes, resync: true));
            Console.Error.WriteLine($"round {r + 1}: stream replay {streamed[^1]:F1} MB/s of volume, full resync {resynced[^1]:F1} MB/s of volume");
        }
        BenchArgs.Cleanup(replicaPath);
        static double Median(List<double> x) { var s = x.Order().ToList(); return s[s.Count / 2]; }
        Console.WriteLine($"RESULT resync {Median(resynced):F1} MB/s (stream replay {Median(streamed):F1} MB/s, ratio {Median(resynced) / Median(streamed):F2}, " +
                          $"volume of {bytes >> 20} MiB written twice, median of {rounds})");
        return 0;
    }

    /// <summary>Volume bytes per second until the replica holds the primary's head durably.</summary>
    private static double Measure(LogStore primary, Id160 vol, string replicaPath, long size, long bytes, bool resync)
    {
        using var replica = BenchArgs.FreshStore(replicaPath, size);
        var clock = Stopwatch.StartNew();
        if (resync)
        {
            var blocks = replica.MaxBlocksPerEntry;
            var c = primary.Resync.ReadAsync(vol, Id160.Zero, 0, (1 << 20) - 4096, blocks).GetAwaiter().GetResult();
            while (true)
            {
                var p = replica.Resync.ApplyAsync(c.Data).GetAwaiter().GetResult();
                if (c.Complete) { if (!p.Committed) throw new InvalidOperationException("the resync did not commit"); break; }
                c = primary.Resync.ReadAsync(vol, c.Transfer, c.NextBlock, (1 << 20) - 4096, blocks).GetAwaiter().GetResult();
            }
        }
        else
        {
            var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 16 << 20, resumeWriterThreshold: 8 << 20));
            var send = Task.Run(async () =>
            {
                await primary.Streams.StreamAsync(vol, 0, pipe.Writer.AsStream(), follow: false);
                await pipe.Writer.CompleteAsync();
            });
            var result = replica.Streams.ApplyAsync(pipe.Reader.AsStream()).GetAwaiter().GetResult();
            send.GetAwaiter().GetResult();
            if (!result.Ok) throw new InvalidOperationException(result.Error);
        }
        var seconds = clock.Elapsed.TotalSeconds;
        if (replica.GetVolume(vol)!.CurrentVersion != primary.GetVolume(vol)!.CurrentVersion) throw new InvalidOperationException("the replica's head differs");
        return bytes / 1e6 / seconds;
    }
}
