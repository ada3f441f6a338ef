// The log engine's settings (cloudfs { } top level): key file, direct I/O, cached reads, segment size, checkpoints.
namespace CloudFs.Actors.Settings;

/// <param name="KeyFile">The volumes' secret view-stamps; null: "&lt;device&gt;.keys".</param>
/// <param name="DirectIo">O_DIRECT where the filesystem allows it.</param>
/// <param name="CachedReads">Client reads through the page cache (every block still checked); off: O_DIRECT reads.</param>
/// <param name="SegmentSize">Segment size of a newly formatted log.</param>
/// <param name="CheckpointInterval">Checkpoint when this much time has passed since the last one (and something changed).</param>
/// <param name="CheckpointBytes">At most this much log is replayed after a crash (a checkpoint starts at half of it).</param>
public sealed record LogSettings(string? KeyFile, bool DirectIo, bool CachedReads, int SegmentSize, TimeSpan CheckpointInterval, long CheckpointBytes)
{
    public static LogSettings Read(SettingsReader r) => new(
        r.Text("cloudfs.key-file") is { Length: > 0 } keys ? keys : null,
        r.Flag("cloudfs.direct-io"),
        r.Flag("cloudfs.cached-reads"),
        (int)r.Bytes("cloudfs.segment-size", min: 1, max: int.MaxValue),
        r.Duration("cloudfs.checkpoint-interval"),
        r.Bytes("cloudfs.checkpoint-bytes", min: 1));
}
