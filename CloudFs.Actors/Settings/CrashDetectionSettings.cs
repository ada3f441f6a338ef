// cloudfs.crash-detection { }: probing a lost member's port to down a killed process at once.
namespace CloudFs.Actors.Settings;

/// <param name="Enabled">Run the crash detector at all.</param>
/// <param name="ProbeTimeout">How long one probe of a lost member's port may take.</param>
public sealed record CrashDetectionSettings(bool Enabled, TimeSpan ProbeTimeout)
{
    public static CrashDetectionSettings Read(SettingsReader r) => new(
        r.Flag("cloudfs.crash-detection.enabled"),
        r.Duration("cloudfs.crash-detection.probe-timeout"));
}
