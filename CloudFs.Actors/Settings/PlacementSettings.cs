// cloudfs.placement { }: the placement singleton's rounds, its waits, and when a replica host away is replaced.
namespace CloudFs.Actors.Settings;

/// <param name="Tick">How often it asks every live host for what changed in its log since the host last reported.</param>
/// <param name="AskTimeout">How long it waits for one host's answer in a round, a vote or a failover step.</param>
/// <param name="CreateTimeout">How long creating a volume may take on its primary (and its replicas to receive it).</param>
/// <param name="ReplaceAfter">A replica host absent this long is replaced by another host, which streams the volume whole.</param>
/// <param name="Sweep">How often a round asks every host for every volume and reconciles them all: the safety net under
/// the reports of changes.</param>
public sealed record PlacementSettings(TimeSpan Tick, TimeSpan AskTimeout, TimeSpan CreateTimeout, TimeSpan ReplaceAfter, TimeSpan Sweep)
{
    public static PlacementSettings Read(SettingsReader r) => new(
        r.Duration("cloudfs.placement.tick"),
        r.Duration("cloudfs.placement.ask-timeout"),
        r.Duration("cloudfs.placement.create-timeout"),
        r.Duration("cloudfs.placement.replace-after"),
        r.Duration("cloudfs.placement.sweep"));
}
