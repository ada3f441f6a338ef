// DamageMap against a per-block model: marks, clears and overlap queries agree for any sequence.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class DamageMapTests
{
    private const int Blocks = 64;

    [Property(MaxTest = 200)]
    public Property Marks_and_clears_agree_with_a_block_model()
    {
        var op = from add in ArbMap.Default.GeneratorFor<bool>()
                 from start in Gen.Choose(0, Blocks - 1)
                 from len in Gen.Choose(1, 16)
                 from reason in Gen.Elements("a", "b")
                 select (add, start, Math.Min(len, Blocks - start), reason);
        return Prop.ForAll(Arb.From(Gen.ListOf(op)), ops =>
        {
            var map = new DamageMap();
            var model = new string?[Blocks];
            foreach (var (add, start, len, reason) in ops)
            {
                if (add) map.Add(start * 512L, len * 512L, reason); else map.Clear(start * 512L, len * 512L);
                for (var i = start; i < start + len; i++) model[i] = add ? reason : null;
            }
            var ranges = map.Snapshot();
            for (var i = 1; i < ranges.Length; i++)
                Assert.True(ranges[i - 1].End <= ranges[i].Offset, "ranges are sorted and do not overlap");
            for (var i = 0; i < Blocks; i++)
            {
                var hit = map.FirstOverlap(i * 512L, 512);
                Assert.Equal(model[i], hit?.Reason);
            }
            Assert.Equal(model.Any(m => m is not null), map.Count > 0);
        });
    }

    [Fact]
    public void A_run_of_blocks_with_one_reason_is_one_range()
    {
        var map = new DamageMap();
        map.Add(0, 512, "bad");
        map.Add(1024, 512, "bad");
        map.Add(512, 512, "bad");
        Assert.Equal([new DamagedRange(0, 1536, "bad")], map.Snapshot());
        map.Clear(512, 512);
        Assert.Equal([new DamagedRange(0, 512, "bad"), new DamagedRange(1024, 512, "bad")], map.Snapshot());
    }
}
