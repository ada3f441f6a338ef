// cloudfs.identity { }: how members prove who they are to each other.
namespace CloudFs.Actors.Settings;

/// <param name="AskTimeout">How long one proof may take before it is asked again.</param>
/// <param name="RetryInterval">How long after an unanswered proof it is asked again.</param>
/// <param name="ProveWithin">With TLS, a member that has not proved itself this long after it is Up is downed.</param>
/// <param name="Wait">How long a host's agent waits for a proof under way before it refuses a share for that host.</param>
public sealed record IdentitySettings(TimeSpan AskTimeout, TimeSpan RetryInterval, TimeSpan ProveWithin, TimeSpan Wait)
{
    public static IdentitySettings Read(SettingsReader r) => new(
        r.Duration("cloudfs.identity.ask-timeout"),
        r.Duration("cloudfs.identity.retry-interval"),
        r.Duration("cloudfs.identity.prove-within"),
        r.Duration("cloudfs.identity.wait"));
}
