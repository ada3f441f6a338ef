// Every cloudfs { } setting of a node, typed, read once from its merged config (the built-in hocon/cloudfs.conf, the
// --config file over it, the flags over both). Each part goes to the component it configures as a constructor
// argument; no component reads the config or keeps a default of its own.
using Akka.Configuration;
using CloudFs.Actors.Node;

namespace CloudFs.Actors.Settings;

public sealed record CloudFsSettings(
    NodeSettings Node,
    TlsSettings Tls,
    LogSettings Log,
    CompactionSettings Compaction,
    ScrubSettings Scrub,
    VolumesSettings Volumes,
    ManagementSettings Management,
    TrashSettings Trash,
    PlacementSettings Placement,
    IdentitySettings Identity,
    CrashDetectionSettings CrashDetection,
    MembershipSettings Membership,
    ReplicationSettings Replication,
    NbdSettings Nbd,
    HttpSettings Http)
{
    private static readonly Lazy<CloudFsSettings> Defaults = new(() => From(CloudFsConfig.Default()));

    /// <summary>The built-in hocon/cloudfs.conf as settings. Tests take theirs from it: <c>Default.Nbd with { ... }</c>.</summary>
    public static CloudFsSettings Default => Defaults.Value;

    /// <summary>The settings of a merged config; a missing or wrong setting is a <see cref="SettingsException"/> naming it.</summary>
    public static CloudFsSettings From(Config config) => Read(new SettingsReader(config));

    /// <summary>Tests: the built-in settings with <paramref name="hocon"/> over them.</summary>
    public static CloudFsSettings With(string hocon) => From(ConfigurationFactory.ParseString(hocon).WithFallback(CloudFsConfig.Default()));

    public static CloudFsSettings Read(SettingsReader r) => new(
        NodeSettings.Read(r),
        TlsSettings.Read(r),
        LogSettings.Read(r),
        CompactionSettings.Read(r),
        ScrubSettings.Read(r),
        VolumesSettings.Read(r),
        ManagementSettings.Read(r),
        TrashSettings.Read(r),
        PlacementSettings.Read(r),
        IdentitySettings.Read(r),
        CrashDetectionSettings.Read(r),
        MembershipSettings.Read(r),
        ReplicationSettings.Read(r),
        NbdSettings.Read(r),
        HttpSettings.Read(r));
}
