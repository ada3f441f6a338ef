// FsCheck: the ranges changed between versions (LogStore.ChangedBetweenAsync) against a model of random writes,
// overwrites, zero-writes and trims, branches, compaction and reopens (ChangedRangesScenario).
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class ChangedRangesProperties
{
    [Property(MaxTest = 30)]
    public Property The_changed_ranges_between_any_two_versions_are_exactly_what_was_written_between_them()
    {
        return Prop.ForAll(Arb.From(ChangedRangesScenario.Ops(volumeBlocks: 256, maxBlocks: 48, maxOps: 40)), ops =>
        {
            using var t = new TempLog();
            var scenario = new ChangedRangesScenario(() => t.Options(size: 16 << 20, segment: 64 << 10) with { CompactionThreshold = 0.3 }, 256);
            scenario.RunAsync(ops).GetAwaiter().GetResult();
        });
    }
}
