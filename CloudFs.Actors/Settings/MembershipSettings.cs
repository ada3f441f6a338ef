// cloudfs.membership { }: a node the cluster removed starts a new incarnation and rejoins (CloudFsNode.Rejoin.cs).
namespace CloudFs.Actors.Settings;

/// <param name="Rejoin">Rejoin after a downing; off: a downed node exits.</param>
/// <param name="RejoinDelay">Pause before the new incarnation starts.</param>
/// <param name="RejoinMaxDelay">The longest pause, for an incarnation removed soon after it started (doubling).</param>
/// <param name="RejoinAloneAfter">A rejoining seed joins only through the other seeds this long before it may join itself.</param>
public sealed record MembershipSettings(bool Rejoin, TimeSpan RejoinDelay, TimeSpan RejoinMaxDelay, TimeSpan RejoinAloneAfter)
{
    public static MembershipSettings Read(SettingsReader r) => new(
        r.Flag("cloudfs.membership.rejoin"),
        r.Duration("cloudfs.membership.rejoin-delay"),
        r.Duration("cloudfs.membership.rejoin-max-delay"),
        r.Duration("cloudfs.membership.rejoin-alone-after"));
}
