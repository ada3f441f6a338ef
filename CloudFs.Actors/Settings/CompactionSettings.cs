// cloudfs.compaction { }: when the engine reclaims segments and how much room it keeps for that.
namespace CloudFs.Actors.Settings;

/// <param name="Enabled">Off: neither the timer nor free space starts compaction.</param>
/// <param name="Interval">How often the block-device actor looks for segments to compact.</param>
/// <param name="Threshold">A segment qualifies when at least this fraction of it is dead.</param>
/// <param name="Reserve">Fraction of the segments kept for compaction's own copies.</param>
/// <param name="LowWater">Compaction starts by itself when no more than this fraction of the segments is free.</param>
/// <param name="MaxWait">How long a write that needs a reserved segment waits for compaction before ENOSPC.</param>
/// <param name="Retention">cloudfs.retention.time: how long versions stay branchable, readable and diffable.</param>
public sealed record CompactionSettings(bool Enabled, TimeSpan Interval, double Threshold, double Reserve, double LowWater, TimeSpan MaxWait, TimeSpan Retention)
{
    public static CompactionSettings Read(SettingsReader r) => new(
        r.Flag("cloudfs.compaction.enabled"),
        r.Duration("cloudfs.compaction.interval"),
        r.Fraction("cloudfs.compaction.threshold"),
        r.Fraction("cloudfs.compaction.reserve"),
        r.Fraction("cloudfs.compaction.low-water"),
        r.Duration("cloudfs.compaction.max-wait", zero: true),
        r.Duration("cloudfs.retention.time", zero: true));
}
