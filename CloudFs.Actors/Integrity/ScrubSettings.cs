// How a node scrubs in the background and how long integrity requests may take (cloudfs.scrub { } in hocon).
using Akka.Configuration;

namespace CloudFs.Actors.Integrity;

/// <param name="Background">Run a background scrub at all.</param>
/// <param name="BytesPerSecond">The background scrub's device read rate (0: unthrottled); `cloudfs scrub` always runs unthrottled.</param>
/// <param name="Interval">A background pass starts this long after the previous one started (or, if it ran longer, when it ends).</param>
/// <param name="FirstDelay">The first background pass starts this long after the node started.</param>
/// <param name="AskTimeout">How long a repair waits for another replica's copy of a piece.</param>
public sealed record ScrubSettings(bool Background, long BytesPerSecond, TimeSpan Interval, TimeSpan FirstDelay, TimeSpan AskTimeout)
{
    public static readonly ScrubSettings Default = new(true, 4L << 20, TimeSpan.FromDays(7), TimeSpan.FromHours(1), TimeSpan.FromSeconds(10));

    public static ScrubSettings From(Config config) => new(
        config.GetBoolean("cloudfs.scrub.enabled", Default.Background),
        config.GetByteSize("cloudfs.scrub.rate") ?? Default.BytesPerSecond,
        config.GetTimeSpan("cloudfs.scrub.interval", Default.Interval),
        config.GetTimeSpan("cloudfs.scrub.first-delay", Default.FirstDelay),
        config.GetTimeSpan("cloudfs.scrub.ask-timeout", Default.AskTimeout));
}
