// Extent index benchmark: inserts/s, single-block lookups/s (one Lookup each, and batched through LookupMany), memory per extent and snapshot cost on 1 M extents,
// with 4 KiB and 64 KiB extents. A Stopwatch loop: the numbers are big enough that the timer's noise is irrelevant.
namespace CloudFs.Bench;

using System.Diagnostics;
using CloudFs.BlockDevice.Index;

internal static class IndexBench
{
    internal static void RegisterSelf() =>
        Program.Register("index", "extent index: inserts/s, lookups/s, bytes/extent, snapshot time [--extents N] [--lookups N] [--page N]", Run);

    private static int Run(string[] args)
    {
        int extents = IntOption(args, "--extents", 1_000_000);
        int lookups = IntOption(args, "--lookups", 10_000_000) / BatchSize * BatchSize;
        int capacity = IntOption(args, "--page", ExtentIndex.DefaultPageCapacity);
        Console.WriteLine($"extent index, {extents:N0} extents, {lookups:N0} lookups, page capacity {capacity}");
        foreach (int blocks in new[] { 8, 128 })
        {
            Console.WriteLine($"-- {blocks * 512 / 1024} KiB extents");
            Measure(extents, lookups, blocks, capacity);
        }
        return 0;
    }

    private const int BatchSize = 64;

    private static void Measure(int extents, int lookups, int blocks, int capacity)
    {
        // Extents at shuffled, spaced slots (a hole after each) so none merge and the count stays exact.
        var rng = new Random(12345);
        var slots = new int[extents];
        for (int i = 0; i < extents; i++) slots[i] = i;
        rng.Shuffle(slots);
        long stride = blocks * 2L;

        long before = GC.GetTotalMemory(forceFullCollection: true);
        var index = new ExtentIndex(capacity);
        var sw = new Timer();
        for (int i = 0; i < extents; i++) index.Insert(slots[i] * stride, blocks, 1_000_000L + (long)i * blocks, i);
        var insertTime = sw.Stop();
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(index);
        Report("random inserts", extents, insertTime, "inserts/s");
        Console.WriteLine($"  extents {index.Count:N0}, memory {(after - before) / (double)index.Count:F1} bytes/extent measured (MemoryBytes says {index.MemoryBytes / (double)index.Count:F1}), {100.0 * (after - before) / ((double)index.Count * blocks * 512):F3} % of data");

        var seq = new ExtentIndex(capacity);
        sw.Restart();
        for (int i = 0; i < extents; i++) seq.Insert(i * stride, blocks, 1_000_000L + (long)i * blocks, i);
        Report("sequential inserts", extents, sw.Stop(), "inserts/s");
        seq = null;

        long volume = extents * stride;
        var output = new List<Extent>(16);
        var probes = new long[1 << 20];
        for (int i = 0; i < probes.Length; i++) probes[i] = rng.NextInt64(volume);
        long found = 0;
        sw.Restart();
        for (int i = 0; i < lookups; i++)
        {
            output.Clear();
            index.Lookup(probes[i & (probes.Length - 1)], 1, output);
            found += output.Count;
        }
        Report("single-block lookups", lookups, sw.Stop(), $"lookups/s ({100.0 * found / lookups:F0} % hit)");

        // The same random blocks through LookupMany, BatchSize per call: independent lookups whose misses overlap.
        // Not a single-lookup rate: it counts only where a caller has many blocks to resolve at once.
        var results = new Extent[BatchSize];
        long batchedFound = 0;
        sw.Restart();
        for (int i = 0; i < lookups; i += BatchSize)
        {
            index.LookupMany(probes.AsSpan(i & (probes.Length - 1), BatchSize), results);
            foreach (var x in results) batchedFound += x.Count;
        }
        Report($"single-block lookups batched ({BatchSize} per LookupMany)", lookups, sw.Stop(), $"lookups/s ({100.0 * batchedFound / lookups:F0} % hit)");
        if (batchedFound != found) throw new InvalidOperationException($"LookupMany found {batchedFound} blocks, Lookup {found}");

        // A sequential reader: each lookup starts on the page the previous one ended on (no root search).
        sw.Restart();
        for (int i = 0; i < lookups; i++)
        {
            output.Clear();
            index.Lookup(i % volume, 1, output);
            found += output.Count;
        }
        Report("sequential single-block lookups", lookups, sw.Stop(), "lookups/s");

        int rangeLookups = lookups / 10;
        sw.Restart();
        for (int i = 0; i < rangeLookups; i++)
        {
            output.Clear();
            index.Lookup(probes[i & (probes.Length - 1)], 128, output);
            found += output.Count;
        }
        Report("64 KiB-range lookups", rangeLookups, sw.Stop(), "lookups/s");

        int overwrites = extents / 4;
        sw.Restart();
        for (int i = 0; i < overwrites; i++)
            index.Insert(probes[i & (probes.Length - 1)], 1, 900_000_000L + i, 2_000_000 + i);
        Report("1-block overwrites (split)", overwrites, sw.Stop(), "inserts/s");

        const int Snapshots = 200;
        var keep = new List<ExtentIndex>();
        sw.Restart();
        for (int i = 0; i < Snapshots; i++) keep.Add(index.Snapshot());
        var snapTime = sw.Stop();
        Console.WriteLine($"  snapshot: {snapTime.Wall.TotalMicroseconds / Snapshots:F1} µs each wall, {snapTime.Cpu.TotalMicroseconds / Snapshots:F1} µs CPU ({index.Count:N0} extents)");
        keep.Clear();
        GC.Collect();
        var snap = index.Snapshot();
        // Random writes right after a snapshot: each first write to a page copies it (once per page and snapshot).
        int cowInserts = Math.Min(100_000, probes.Length);
        sw.Restart();
        for (int i = 0; i < cowInserts; i++) index.Insert(probes[i], 1, 950_000_000L + i, 3_000_000 + i);
        Report("inserts right after a snapshot (copy-on-write)", cowInserts, sw.Stop(), $"inserts/s ({index.PagesSharedWith(snap):N0} of {index.PageCount:N0} pages still shared)");
        GC.KeepAlive(snap);
    }

    // The machine is shared: the rate per CPU-second of the process is the stable figure, the wall rate is what a caller saw.
    private static void Report(string what, long ops, (TimeSpan Wall, TimeSpan Cpu) t, string unit) =>
        Console.WriteLine($"  {what}: {ops / t.Cpu.TotalSeconds / 1e6:F2} M {unit} per CPU-second ({ops / t.Wall.TotalSeconds / 1e6:F2} M wall)");

    /// <summary>Wall time and the process's CPU time since the last restart.</summary>
    private sealed class Timer
    {
        private readonly Stopwatch _wall = Stopwatch.StartNew();
        private TimeSpan _cpu = ThreadCpu();

        internal void Restart()
        {
            _cpu = ThreadCpu();
            _wall.Restart();
        }

        internal (TimeSpan Wall, TimeSpan Cpu) Stop() => (_wall.Elapsed, ThreadCpu() - _cpu);

        // The process total: the benchmark is single-threaded, so this is the loop plus a little GC and JIT work.
        private static TimeSpan ThreadCpu() => Process.GetCurrentProcess().TotalProcessorTime;
    }

    private static int IntOption(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
    }
}
