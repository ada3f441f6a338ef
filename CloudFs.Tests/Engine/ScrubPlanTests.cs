// ScrubPlan against a block model: for any live extents (several indexes sharing runs, entries spread over segments),
// every live block is verified exactly once, each read covers its entries from their headers, stays inside one segment
// and within the chunk size, and a long stretch of dead space is skipped rather than read.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Compaction;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Scrub;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class ScrubPlanTests
{
    private const int SegmentSize = 256 << 10;
    private const int MaxChunk = 64 << 10;
    private const int MaxGap = 16 << 10;
    private static readonly DeviceHeader Layout = DeviceHeader.Layout(Id160.Random(), 64L << 20, SegmentSize, 1);

    /// <summary>Entries of up to 64 blocks at 512-byte steps in the first segments; extents are runs of their blocks.</summary>
    private static Gen<(Extent, bool)[]> Extents =>
        from entries in Gen.ListOf(from seg in Gen.Choose(0, 3)
                                   from at in Gen.Choose(1, SegmentSize / 512 - 80)
                                   from blocks in Gen.Choose(1, 64)
                                   from first in Gen.Choose(0, 10_000)
                                   from parts in Gen.ListOf(from s in Gen.Choose(0, 63)
                                                            from n in Gen.Choose(1, 64)
                                                            from staged in ArbMap.Default.GeneratorFor<bool>()
                                                            select (s, n, staged))
                                   select (Entry: Layout.FirstSegmentOffset / 512 + (long)seg * (SegmentSize / 512) + at, Blocks: blocks, First: (long)first, Parts: parts))
        select entries.DistinctBy(e => e.Entry).SelectMany(e => e.Parts.Select(p =>
        {
            var start = p.s % e.Blocks;
            var count = Math.Min(p.n, e.Blocks - start);
            return (new Extent(e.First + start, count, e.Entry + 1 + start, e.Entry), p.staged);
        })).ToArray();

    [Property(MaxTest = 300)]
    public Property Every_live_block_is_verified_once_inside_one_bounded_read_of_its_segment() =>
        Prop.ForAll(Arb.From(Extents), extents =>
        {
            // Two entries never share a header block in this model; drop the generator's collisions.
            var byEntry = extents.GroupBy(e => e.Item1.EntryBlock).ToDictionary(g => g.Key, g => g.Select(x => x.Item1).ToList());
            var live = new HashSet<(long Entry, long LogBlock)>();
            foreach (var (entry, list) in byEntry)
                foreach (var e in list)
                    for (var i = 0; i < e.Count; i++) live.Add((entry, e.LogBlock + i));
            var plan = ScrubPlan.Build(Layout, extents, MaxChunk, MaxGap);

            var seen = new List<(long, long)>();
            foreach (var chunk in plan.Chunks)
            {
                Assert.True(chunk.Length <= MaxChunk || chunk.Count == 1, $"a read of {chunk.Length} bytes holds {chunk.Count} entries");
                Assert.Equal(0, chunk.Offset % 4096);
                Assert.Equal(0, chunk.Length % 4096);
                for (var i = chunk.First; i < chunk.First + chunk.Count; i++)
                {
                    var entry = plan.Entries[i];
                    Assert.Equal(chunk.Segment, Compactor.SegmentOf(Layout, entry.EntryBlock));
                    Assert.True(entry.EntryBlock * 512 >= chunk.Offset && entry.EndBlock * 512 <= chunk.Offset + chunk.Length, "the read does not cover its entry");
                    foreach (var s in entry.Spans)
                        for (var b = 0; b < s.Count; b++) seen.Add((entry.EntryBlock, s.LogBlock + b));
                }
            }
            Assert.Equal(live.Count, seen.Count);
            Assert.Equal(live.Order(), seen.Order());
            Assert.Equal(live.Count, plan.LiveBlocks);
        });

    [Fact]
    public void Dead_space_longer_than_the_gap_is_skipped_and_shorter_is_read_through()
    {
        var seg = Layout.FirstSegmentOffset / 512;
        Extent Run(long entry) => new(entry, 8, seg + entry + 1, seg + entry);
        var plan = ScrubPlan.Build(Layout, [(Run(0), false), (Run(16), false), (Run(200), false)], MaxChunk, MaxGap);
        Assert.Equal([2, 1], plan.Chunks.Select(c => c.Count));
    }
}
