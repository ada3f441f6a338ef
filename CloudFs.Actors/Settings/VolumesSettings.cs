// cloudfs.volumes { }: how the gateway asks volume actors, and when sharding passivates an idle one.
namespace CloudFs.Actors.Settings;

/// <param name="AskTimeout">A request to a volume actor fails after this long (NBD: EIO).</param>
/// <param name="AttemptTimeout">A request to a replicated volume is asked again after this long without an answer.</param>
/// <param name="PassivateIdleAfter">An idle volume actor is passivated after this long (akka.cluster.sharding).</param>
public sealed record VolumesSettings(TimeSpan AskTimeout, TimeSpan AttemptTimeout, TimeSpan PassivateIdleAfter)
{
    public static VolumesSettings Read(SettingsReader r) => new(
        r.Duration("cloudfs.volumes.ask-timeout"),
        r.Duration("cloudfs.volumes.attempt-timeout"),
        r.Duration("cloudfs.volumes.passivate-idle-after"));
}
