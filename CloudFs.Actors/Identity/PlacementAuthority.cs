// Who may command a host as placement: a member that merely proved its identity may ask for its own share or read
// a feed, but only the member the placement singleton runs on decides a volume's fate (create, fence, re-seal a share
// for a new primary, take over, change the replica set, follow, keep a share).
using Akka.Actor;
using Akka.Cluster;

namespace CloudFs.Actors.Identity;

public sealed class PlacementAuthority(Cluster cluster, ProvenHosts proven, TimeSpan viewWait)
{
    /// <summary>Null when <paramref name="sender"/> speaks for placement now; otherwise why not, in one sentence.</summary>
    public string? RefusalNow(IActorRef sender, string command)
    {
        // A remote message sent without a sender arrives from DeadLetters, in this node's scope: it must not pass as local.
        if (sender.IsNobody()) return $"{command} came with no sender to answer; placement's commands are asked, so it is refused";
        var from = sender.Path.Address;
        if (from.HasLocalScope || from == cluster.SelfAddress) return null;
        var runsPlacement = PlacementMember();
        if (from == runsPlacement && proven.OfAddress(from.ToString()) is not null) return null;
        return $"{command} came from {from}, which is not the member placement runs on ({runsPlacement?.ToString() ?? "none known here"}); refused";
    }

    /// <summary>
    /// As <see cref="RefusalNow"/>, waiting up to the view wait for this node's view of the cluster to agree: during a
    /// singleton hand-over the new placement may speak before this node has seen the old oldest member go.
    /// </summary>
    public async Task<string?> RefusalAsync(IActorRef sender, string command)
    {
        var deadline = DateTime.UtcNow + viewWait;
        while (true)
        {
            var refusal = RefusalNow(sender, command);
            if (refusal is null || sender.IsNobody() || DateTime.UtcNow >= deadline) return refusal;
            await Task.Delay(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
        }
    }

    /// <summary>The oldest member that is Up (or leaving, still handing over): where the placement singleton runs.</summary>
    private Address? PlacementMember() => cluster.State.Members
        .Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving)
        .OrderBy(m => m, Member.AgeOrdering)
        .FirstOrDefault()?.Address;
}
