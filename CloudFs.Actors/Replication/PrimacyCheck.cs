// Whether a volume's writer on this host is still its primary, asked when the writer starts (recovers) for a volume
// with replicas: a primary that comes back (a restart, a rejoin after a stall or a partition) still holds its old
// view's secret and claims the chain, while a replica may have taken the volume over meanwhile at a newer view. Its
// replica set's other hosts are asked which view of the volume they hold (AwaitVolume with no wait): one at a newer view
// means this host's copy is an old primary's, and a write taken on it would be acknowledged on a chain that the host
// rewinds when it follows the new primary. Members not proven, unreachable, down, or silent within the timeout are
// not waited for: they say nothing either way (docs/CLUSTER.md, "A primary that comes back").
using Akka.Actor;
using Akka.Cluster;
using CloudFs.Actors.Identity;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

/// <summary>Local, from a volume's writer as it starts to its host's agent; answered with <see cref="PrimacyChecked"/>.</summary>
public sealed record ConfirmPrimacy(Id160 Volume, long View, IReadOnlyList<Id160> Replicas);

/// <summary>The newest view of the volume a replica host holds (-1: none answered), and that host.</summary>
public sealed record PrimacyChecked(long NewestView, Id160? Holder)
{
    public bool Superseded(long view) => NewestView > view;
}

internal static class PrimacyCheck
{
    /// <summary>How long a reachable replica host is given to answer.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    public static async Task<PrimacyChecked> AskReplicasAsync(ActorSystem system, ProvenHosts proven, Id160 self, ConfirmPrimacy ask)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var state = cluster.State;
        var asked = new List<(Id160 Host, Task<object> Answer)>();
        foreach (var host in ask.Replicas)
        {
            if (host == self || proven.OfHost(host) is not { } member) continue;
            var up = state.Members.FirstOrDefault(m => m.Address.ToString() == member.Address);
            if (up is null || up.Status is MemberStatus.Down or MemberStatus.Removed || state.Unreachable.Contains(up)) continue;
            var agent = system.ActorSelection(new RootActorPath(up.Address) / "user" / HostAgent.Name);
            asked.Add((host, agent.Ask<object>(new AwaitVolume(ask.Volume.ToString(), 0), Timeout)));
        }
        var newest = new PrimacyChecked(-1, null);
        foreach (var (host, answer) in asked)
        {
            try
            {
                if (await answer.ConfigureAwait(false) is VolumeHeld held && held.Volume.ViewNumber > newest.NewestView)
                    newest = new PrimacyChecked(held.Volume.ViewNumber, host);
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                // Silent: says nothing either way.
            }
        }
        return newest;
    }
}
