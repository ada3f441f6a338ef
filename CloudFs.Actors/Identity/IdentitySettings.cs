// cloudfs.identity { } (hocon/cloudfs.conf): how members prove who they are to each other.
using Akka.Configuration;

namespace CloudFs.Actors.Identity;

/// <param name="AskTimeout">How long one proof may take before it is asked again.</param>
/// <param name="RetryInterval">How long after an unanswered proof it is asked again.</param>
/// <param name="ProveWithin">With TLS, a member that has not proved itself this long after it is Up is downed.</param>
/// <param name="Wait">How long a host's agent waits for a proof under way before it refuses a share for that host.</param>
public sealed record IdentitySettings(TimeSpan AskTimeout, TimeSpan RetryInterval, TimeSpan ProveWithin, TimeSpan Wait)
{
    public static readonly IdentitySettings Default = new(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(2));

    public static IdentitySettings From(Config config) => new(
        config.GetTimeSpan("cloudfs.identity.ask-timeout", Default.AskTimeout),
        config.GetTimeSpan("cloudfs.identity.retry-interval", Default.RetryInterval),
        config.GetTimeSpan("cloudfs.identity.prove-within", Default.ProveWithin),
        config.GetTimeSpan("cloudfs.identity.wait", Default.Wait));
}
