// recovery: time to Open a log filled with writes and periodic checkpoints, after a crash (no checkpoint at close),
// so Open = load the newest checkpoint + roll forward what was appended since. Goal: <= 2 s for 4 GiB.
// --damage block|header garbles one stored block, or the header, of an entry rolled forward (written after the last
// checkpoint, before the last flush): recovery keeps it / skips it instead of truncating (goal: as fast as without).
using System.Diagnostics;
using CloudFs.BlockDevice;

namespace CloudFs.Bench;

internal static class RecoveryBench
{
    public static void RegisterSelf() => Program.Register("recovery", "open time of a filled log after a crash: --path FILE --size 4G --fill 0.9 [--damage none|block|header]", Run);

    private static int Run(string[] args)
    {
        var path = BenchArgs.Get(args, "path", "/tmp/cloudfs-bench.log");
        var size = BenchArgs.Size(BenchArgs.Get(args, "size", "4G"));
        var fill = double.Parse(BenchArgs.Get(args, "fill", "0.9"));
        var keep = BenchArgs.Get(args, "keep", "no") == "yes";
        var damage = BenchArgs.Get(args, "damage", "none");
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
            store.Checkpoints.MaybeWriteAsync().GetAwaiter().GetResult();
        }
        // One more batch after a checkpoint: the entry to damage is rolled forward, with a flush after it.
        store.Checkpoints.WriteAsync().GetAwaiter().GetResult();
        var damaged = store.DurablePositionAsync().GetAwaiter().GetResult();
        for (var i = 0; i < 256; i++) inflight.Add(store.WriteAsync(vol, rnd.NextInt64(volSize / chunk) * chunk, data).AsTask());
        Task.WaitAll(inflight.ToArray());
        entries += 256;
        store.FlushAsync().AsTask().GetAwaiter().GetResult();
        store.CloseWithoutCheckpoint();
        fillTime.Stop();
        if (damage != "none") Damage(path, damaged, damage);
        var sw = Stopwatch.StartNew();
        using (var again = LogStore.Open(new LogStoreOptions { Path = path, CreateSize = size }))
        {
            sw.Stop();
            var r = again.LastRecovery;
            Console.WriteLine($"RESULT recovery {sw.Elapsed.TotalSeconds:F3} s (damage {damage}: {again.ListVolumes().Count(v => v.IsDamaged)} damaged volume(s); log {size >> 20} MiB, {entries} entries, used {again.Usage.UsedBytes >> 20} MiB; checkpoint gen {r.Generation}, {r.EntriesReplayed} entries rolled forward; fill took {fillTime.Elapsed.TotalSeconds:F1} s)");
            again.CloseWithoutCheckpoint();
        }
        if (!keep) BenchArgs.Cleanup(path);
        return 0;
    }

    /// <summary>Garbles the first entry at or after <paramref name="at"/>: one stored block, or its header beyond correction.</summary>
    private static void Damage(string path, long at, string what)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        var sector = new byte[512];
        file.Position = at;
        file.ReadExactly(sector);
        // A durable mark may come first ("CFSD"); the entry ("CFSE") follows it.
        if (System.Text.Encoding.ASCII.GetString(sector, 0, 4) != "CFSE") at += 512;
        // 64 KiB entries: a header sector and one CRC-table sector, then the stored blocks.
        var target = what == "header" ? at + 8 : at + 2 * 512 + 100;
        file.Position = target;
        var garbage = new byte[64];
        new Random(7).NextBytes(garbage);
        file.Write(garbage);
        file.Flush(true);
    }
}
