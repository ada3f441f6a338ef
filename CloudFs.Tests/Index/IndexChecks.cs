// Assertions shared by the index tests: a lookup or an enumeration must agree block for block with a model.
namespace CloudFs.Tests.Index;

using CloudFs.BlockDevice.Index;

internal static class IndexChecks
{
    /// <summary>Lookup of [start, start+count) is ordered, clipped, non-overlapping and equal to the model block by block.</summary>
    internal static void LookupMatches(ExtentIndex index, BlockModel model, long start, long count, string what)
    {
        var output = new List<Extent>();
        index.Lookup(start, count, output);
        var actual = new BlockModel.Slot[count];
        long prevEnd = start;
        foreach (var x in output)
        {
            Assert.True(x.Count > 0, $"{what}: empty extent {x}");
            Assert.True(x.Start >= prevEnd, $"{what}: extent {x} out of order or overlapping (previous end {prevEnd})");
            Assert.True(x.End <= start + count, $"{what}: extent {x} not clipped to [{start}, {start + count})");
            for (int k = 0; k < x.Count; k++)
                actual[x.Start - start + k] = new BlockModel.Slot(true, x.IsZero ? x.LogBlock : x.LogBlock + k, x.EntryBlock);
            prevEnd = x.End;
        }
        for (long b = 0; b < count; b++)
        {
            var expected = start + b < model.Blocks ? model.Resolve(start + b) : default;
            Assert.True(expected == actual[b], $"{what}: block {start + b} expected {expected}, index says {actual[b]}");
        }
    }

    /// <summary>The index's own extents (not the parent's) are sorted, disjoint, counted right, and equal to the model's own blocks.</summary>
    internal static void OwnExtentsMatch(ExtentIndex index, BlockModel model, string what)
    {
        long prevEnd = 0, n = 0, blocks = 0;
        foreach (var x in index.Enumerate())
        {
            Assert.True(x.Count > 0 && x.Start >= prevEnd, $"{what}: enumeration out of order at {x}");
            for (int k = 0; k < x.Count; k++)
            {
                var own = model.Own(x.Start + k);
                var got = new BlockModel.Slot(true, x.IsZero ? x.LogBlock : x.LogBlock + k, x.EntryBlock);
                Assert.True(own == got, $"{what}: own block {x.Start + k} expected {own}, index holds {got}");
            }
            prevEnd = x.End;
            n++;
            blocks += x.Count;
        }
        Assert.Equal(n, index.Count);
        Assert.Equal(model.OwnExtentBlocks(), blocks);
    }
}
