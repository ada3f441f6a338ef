// The index's search structures on indexes big enough to use them: the root's summary of every 16th page and its top
// of every 256th, over hundreds to thousands of pages, kept right while pages split, merge away, and are copied by
// snapshots and relocation.
namespace CloudFs.Tests.Index;

using CloudFs.BlockDevice.Index;

public sealed class ExtentIndexSearchTests
{
    private const int Blocks = 20_000;

    [Theory]
    [InlineData(4, 1)]
    [InlineData(5, 2)]
    [InlineData(16, 3)]
    [InlineData(40, 4)]
    public void Random_writes_and_removes_over_hundreds_of_pages_read_back_like_the_block_model(int pageCapacity, int seed)
    {
        var index = new ExtentIndex(pageCapacity);
        var model = new BlockModel(Blocks, null);
        var rng = new Random(seed);
        long log = 1_000, entry = 1;
        for (int op = 0; op < 6_000; op++)
        {
            long start = rng.Next(Blocks);
            int count = (int)Math.Min(1 + rng.Next(op % 5 == 0 ? 200 : 12), Blocks - start);
            if (op % 7 == 3)
            {
                index.Remove(start, count);
                model.Remove(start, count);
            }
            else
            {
                index.Insert(start, count, log, entry);
                model.Insert(start, count, log, entry++);
                log += count + 5;
            }
            // Single-block probes go through the root search from a cold start every time (random places).
            if (op % 50 == 49)
                for (int k = 0; k < 40; k++) IndexChecks.LookupMatches(index, model, rng.Next(Blocks), 1 + rng.Next(3), $"probe after op {op}");
        }
        Assert.True(index.PageCount > 16 * 4, $"only {index.PageCount} pages: the test must span several summary runs");
        IndexChecks.OwnExtentsMatch(index, model, "at the end");
        for (long b = 0; b < Blocks; b += 97) IndexChecks.LookupMatches(index, model, b, 1, $"block {b}");
    }

    [Fact]
    public void Snapshots_and_relocated_frozen_copies_search_like_the_live_index_they_came_from()
    {
        var live = new ExtentIndex(pageCapacity: 4);
        var model = new BlockModel(Blocks, null);
        for (int i = 0; i < 3_000; i++)
        {
            live.Insert(i * 6, 4, 50_000 + i * 4, i);
            model.Insert(i * 6, 4, 50_000 + i * 4, i);
        }
        var snap = live.Snapshot();
        var snapModel = model.Clone();
        // The live index keeps changing (pages split and vanish, the root's keys shift) after the snapshot.
        var rng = new Random(11);
        for (int i = 0; i < 2_000; i++)
        {
            long at = rng.Next(Blocks - 50);
            if (i % 3 == 0) { live.Remove(at, 30); model.Remove(at, 30); }
            else { live.Insert(at, 2, 900_000 + i * 2, 10_000 + i); model.Insert(at, 2, 900_000 + i * 2, 10_000 + i); }
        }
        // Relocating the frozen snapshot publishes a rebuilt root; its searches must still land on the right pages.
        Assert.Equal(4, snap.Relocate(600, 4, 50_400, 777_000, 99_999));
        snapModel.Relocate(600, 4, 50_400, 777_000, 99_999);
        for (long b = 0; b < Blocks; b += 7)
        {
            IndexChecks.LookupMatches(live, model, b, 1, $"live block {b}");
            IndexChecks.LookupMatches(snap, snapModel, b, 1, $"snapshot block {b}");
        }
        IndexChecks.OwnExtentsMatch(snap, snapModel, "snapshot at the end");
    }

    [Fact]
    public void Pages_bigger_than_256_extents_search_their_longer_summary()
    {
        // Sequential writes fill pages to the brim: 300 extents need 19 summary slots, past the 16 one vector count reads.
        var index = new ExtentIndex(pageCapacity: 300);
        var model = new BlockModel(Blocks, null);
        for (int i = 0; i < 2_400; i++)
        {
            index.Insert(i * 8, 5, 10_000 + i * 5, i);
            model.Insert(i * 8, 5, 10_000 + i * 5, i);
        }
        index.Insert(4_003, 2, 777_000, 9_999);     // splits a full page in the middle
        model.Insert(4_003, 2, 777_000, 9_999);
        Assert.InRange(index.PageCount, 8, 10);
        for (long b = 0; b < 2_400 * 8; b += 3) IndexChecks.LookupMatches(index, model, b, 1, $"block {b}");
    }
    [Fact]
    public void A_root_of_more_than_8192_pages_searches_through_its_top_level()
    {
        // Appends fill pages of 4 to the brim: 10 000 pages, 625 summary slots, 40 top slots (past the 32 the vector
        // counts read, so the top is binary searched). Then removes drop whole pages and writes split others.
        const int Extents = 40_000, Space = Extents * 3;
        var index = new ExtentIndex(pageCapacity: 4);
        var model = new BlockModel(Space, null);
        for (int i = 0; i < Extents; i++)
        {
            index.Insert(i * 3L, 2, 100_000 + i * 2L, i);
            model.Insert(i * 3L, 2, 100_000 + i * 2L, i);
        }
        Assert.True(index.PageCount > 8192, $"only {index.PageCount} pages");
        var snap = index.Snapshot();
        var snapModel = model.Clone();
        var rng = new Random(5);
        for (int op = 0; op < 3_000; op++)
        {
            long at = rng.Next(Space - 400);
            int n = 1 + rng.Next(300);
            if (op % 4 == 0) { index.Remove(at, n); model.Remove(at, n); }
            else { index.Insert(at, 1, 9_000_000 + op, 500_000 + op); model.Insert(at, 1, 9_000_000 + op, 500_000 + op); }
        }
        var probes = new List<long>();
        for (long b = 0; b < Space; b += 5) probes.Add(b);
        foreach (long b in probes)
        {
            IndexChecks.LookupMatches(index, model, b, 1, $"live block {b}");
            IndexChecks.LookupMatches(snap, snapModel, b, 1, $"snapshot block {b}");
        }
        // The batched search goes through the same root.
        var results = new Extent[probes.Count];
        index.LookupMany(probes.ToArray(), results);
        var one = new List<Extent>();
        for (int k = 0; k < probes.Count; k++)
        {
            one.Clear();
            index.Lookup(probes[k], 1, one);
            Assert.Equal(one.Count == 0 ? new Extent(probes[k], 0, Extent.ZeroLogBlock, 0) : one[0], results[k]);
        }
    }
}
