// FsCheck: random operation sequences against a byte-array model on a file-backed log with small segments.
using CloudFs.BlockDevice;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class LogStoreProperties
{
    [Property(MaxTest = 25)]
    public Property Everything_flushed_reads_back_through_reopen_crash_and_compaction()
    {
        return Prop.ForAll(Arb.From(ModelScenario.Ops(volumeBlocks: 256, maxBlocks: 64, maxOps: 40)), ops =>
        {
            using var t = new TempLog();
            var scenario = new ModelScenario(() => t.Options(size: 16 << 20, segment: 64 << 10) with { CompactionThreshold = 0.3 }, (o, b) => t.Poke(o, b), 256);
            scenario.RunAsync(ops).GetAwaiter().GetResult();
        });
    }
}
