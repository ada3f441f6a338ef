// cloudfs.trash { }: how long a volume `cloudfs rm` moved to the trash is kept before each host purges its copy.
namespace CloudFs.Actors.Settings;

/// <param name="Keep">A volume in the trash is purged this long after its trash entry's timestamp.</param>
/// <param name="CheckInterval">How often each host looks for volumes in the trash whose time is up.</param>
public sealed record TrashSettings(TimeSpan Keep, TimeSpan CheckInterval)
{
    public static TrashSettings Read(SettingsReader r) => new(r.Duration("cloudfs.trash.keep"), r.Duration("cloudfs.trash.check-interval"));
}
