// cloudfs.management { }: how long the management actor waits for other nodes.
namespace CloudFs.Actors.Settings;

/// <param name="AskTimeout">How long it waits for other nodes when it gathers cluster-wide answers.</param>
public sealed record ManagementSettings(TimeSpan AskTimeout)
{
    public static ManagementSettings Read(SettingsReader r) => new(r.Duration("cloudfs.management.ask-timeout"));
}
