// LookupMany against single Lookups: every block of every index (live, snapshots, branch parents, branches) must
// resolve exactly as Lookup(block, 1) does, in any order, on tiny pages and on pages with many 16-extent runs.
namespace CloudFs.Tests.Index;

using CloudFs.BlockDevice.Index;
using FsCheck.Xunit;

public sealed class ExtentIndexBatchTests
{
    /// <summary>What LookupMany must say for <paramref name="block"/>: Lookup's one extent, or an empty one for a hole.</summary>
    private static Extent Single(ExtentIndex index, long block, List<Extent> scratch)
    {
        scratch.Clear();
        index.Lookup(block, 1, scratch);
        Assert.True(scratch.Count <= 1, $"Lookup of one block {block} gave {scratch.Count} extents");
        return scratch.Count == 0 ? new Extent(block, 0, Extent.ZeroLogBlock, 0) : scratch[0];
    }

    private static void BatchAgrees(ExtentIndex index, long[] blocks, string what)
    {
        var results = new Extent[blocks.Length];
        index.LookupMany(blocks, results);
        var scratch = new List<Extent>();
        for (int k = 0; k < blocks.Length; k++)
        {
            var expected = Single(index, blocks[k], scratch);
            Assert.True(expected == results[k], $"{what}: block {blocks[k]} (#{k} of {blocks.Length}) Lookup says {expected}, LookupMany {results[k]}");
        }
    }

    [Property(Arbitrary = [typeof(IndexOpArbitrary)], MaxTest = 300)]
    public void LookupMany_agrees_with_single_lookups_on_every_index_of_a_scenario(IndexOp[] ops, byte capacitySeed, int shuffleSeed)
    {
        var s = new IndexScenario(4 + capacitySeed % 4);
        foreach (var op in ops) s.Apply(op);
        // Every block of the volume and a few past it, shuffled, with repeats, in a batch longer than one group.
        var blocks = Enumerable.Range(-2, IndexScenario.Blocks + 6).Select(b => (long)b).ToList();
        blocks.AddRange(blocks.Take(20));
        var shuffled = blocks.ToArray();
        new Random(shuffleSeed).Shuffle(shuffled);
        foreach (var (index, _) in s.All)
        {
            string what = index.IsFrozen ? "a frozen index" : index.Parent is null ? "the live index" : "a branch";
            BatchAgrees(index, shuffled, what);
            BatchAgrees(index, blocks.ToArray(), what + ", blocks in order");
        }
    }

    [Property(MaxTest = 25)]
    public void LookupMany_agrees_with_single_lookups_on_pages_of_many_runs(int seed, byte capacitySeed)
    {
        // Capacities with one run, several runs searched by one vector count, and more than 16 runs (binary search).
        int capacity = new[] { 4, 40, 256, 300 }[capacitySeed % 4];
        const long Space = 40_000;
        var rng = new Random(seed);
        var live = new ExtentIndex(capacity);
        long log = 1_000, entry = 1;
        void Write(ExtentIndex ix, int n)
        {
            for (int w = 0; w < n; w++)
            {
                long start = rng.NextInt64(Space);
                int count = rng.Next(1, 24);
                switch (rng.Next(8))
                {
                    case 0: ix.Insert(start, count, Extent.ZeroLogBlock, entry++); break;
                    case 1: ix.Remove(start, count); break;
                    default: ix.Insert(start, count, log, entry++); log += count + 5; break;
                }
            }
        }
        Write(live, 3_000);
        var snapshot = live.Snapshot();
        Write(live, 500);
        var branch = live.Branch();
        Write(branch, 400);
        var grandchild = branch.Branch();
        Write(grandchild, 100);
        var blocks = new long[2_000];
        for (int k = 0; k < blocks.Length; k++) blocks[k] = rng.NextInt64(-3, Space + 40);
        blocks[0] = long.MaxValue - 1;
        foreach (var (index, what) in new[] { (live, "live"), (snapshot, "snapshot"), (branch, "branch"), (branch.Parent!, "branch parent"), (grandchild, "branch of a branch") })
            BatchAgrees(index, blocks, $"capacity {capacity}, {what}");
    }

    [Fact]
    public void LookupMany_of_nothing_writes_nothing_and_a_short_result_span_is_refused()
    {
        var index = new ExtentIndex();
        index.Insert(10, 5, 100, 1);
        var results = new Extent[2];
        index.LookupMany([], results);
        Assert.Equal(default, results[0]);
        Assert.Throws<ArgumentException>(() => index.LookupMany([10, 11, 12], results));
        index.LookupMany([12, 9], results);
        Assert.Equal([new Extent(12, 1, 102, 1), new Extent(9, 0, Extent.ZeroLogBlock, 0)], results);
    }
}
