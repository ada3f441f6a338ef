// One random index operation for the FsCheck properties, with a generator spread over the whole small volume
// (FsCheck's default integers stay near zero, which would leave most of the index untouched).
namespace CloudFs.Tests.Index;

using FsCheck;
using FsCheck.Fluent;

/// <summary>Kind 0–3 write data, 4 write zeros, 5 remove, 6 snapshot/branch, 7 relocate, 8–9 lookup.</summary>
public readonly record struct IndexOp(int Kind, int Start, int Count, int Extra);

public static class IndexOpArbitrary
{
    public static Arbitrary<IndexOp> IndexOps() => Arb.From(
        from kind in Gen.Choose(0, 9)
        from start in Gen.Choose(0, IndexScenario.Blocks - 1)
        from count in Gen.OneOf(Gen.Choose(1, 4), Gen.Choose(1, 40))
        from extra in Gen.Choose(0, 255)
        select new IndexOp(kind, start, count, extra));
}
