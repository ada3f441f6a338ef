// cloudfs.scrub { }: how a node scrubs in the background and how long integrity requests may take.
namespace CloudFs.Actors.Settings;

/// <param name="Background">Run a background scrub at all.</param>
/// <param name="BytesPerSecond">The background scrub's device read rate (0: unthrottled); `cloudfs scrub` always runs unthrottled.</param>
/// <param name="Interval">A background pass starts this long after the previous one started (or, if it ran longer, when it ends).</param>
/// <param name="FirstDelay">The first background pass starts this long after the node started.</param>
/// <param name="AskTimeout">How long a repair waits for another replica's copy of a piece.</param>
/// <param name="CommandTimeout">How long the management actor waits for one host's `cloudfs scrub` or `cloudfs verify --deep`.</param>
public sealed record ScrubSettings(bool Background, long BytesPerSecond, TimeSpan Interval, TimeSpan FirstDelay, TimeSpan AskTimeout, TimeSpan CommandTimeout)
{
    public static ScrubSettings Read(SettingsReader r) => new(
        r.Flag("cloudfs.scrub.enabled"),
        r.Bytes("cloudfs.scrub.rate"),
        r.Duration("cloudfs.scrub.interval"),
        r.Duration("cloudfs.scrub.first-delay", zero: true),
        r.Duration("cloudfs.scrub.ask-timeout"),
        r.Duration("cloudfs.scrub.command-timeout"));
}
