// Whether any member of the cluster serves a read-write NBD attachment of a volume: asked by a new primary (after a
// failover) so that it keeps fresh holders out only when a previous holder may still be writing through it. Every
// member that is not down or removed is asked (this one too) the question `cloudfs rm` asks (CountAttachments); a
// member that is unreachable or does not answer in time may hold one, unless it is downed meanwhile: a downed member
// is quarantined, so no client's write through it reaches this writer any more (a replica killed just before the
// question held a fresh writer back for a whole lease term, 9 s, though the crash detector downed it 0.25 s later).
using Akka.Actor;
using Akka.Cluster;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Attachments;

internal static class ReadWriteAttachmentCensus
{
    /// <summary>How often a member that has not answered yet is looked at again (downed meanwhile: it holds none).</summary>
    private static readonly TimeSpan Recheck = TimeSpan.FromMilliseconds(100);

    /// <summary>True when every live member answered within <paramref name="timeout"/> that it serves no read-write
    /// attachment of <paramref name="volume"/>, or was downed meanwhile; false when one does, or may (unreachable or
    /// silent, and not downed). True without a cluster.</summary>
    public static async Task<bool> NoneAsync(ActorSystem system, Id160 volume, TimeSpan timeout)
    {
        Akka.Cluster.Cluster cluster;
        try { cluster = Akka.Cluster.Cluster.Get(system); }
        catch (Exception) { return true; } // Not a clustered system (tests): no other node writes through this one.
        var state = cluster.State;
        var members = state.Members.Where(m => !Gone(m.Status)).ToArray();
        if (members.Length == 0) return false;
        var question = new CountAttachments(volume.ToString());
        var answers = await Task.WhenAll(members.Select(m => AnswerAsync(system, cluster, m, state.Unreachable.Contains(m), question, timeout)))
            .ConfigureAwait(false);
        return answers.All(n => n == 0);
    }

    /// <summary>The member's count of read-write attachments of the volume; 0 once it is downed or removed; -1 when it
    /// did not answer within <paramref name="timeout"/> (or could not be asked: unreachable).</summary>
    private static async Task<int> AnswerAsync(ActorSystem system, Akka.Cluster.Cluster cluster, Member member, bool unreachable,
        CountAttachments question, TimeSpan timeout)
    {
        var ask = unreachable
            ? null
            : system.ActorSelection(new RootActorPath(member.Address) / "user" / ManagementActor.Name).Ask<AttachmentCount>(question, timeout);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (ask is { IsCompletedSuccessfully: true }) return ask.Result.ReadWrite;
            // A failed ask says nothing: the member may still be downed before the deadline.
            if (ask is { IsCompleted: true }) ask = null;
            if (Downed(cluster, member)) return 0;
            if (DateTime.UtcNow >= deadline) return -1;
            var left = deadline - DateTime.UtcNow;
            var wait = Task.Delay(left < Recheck ? left : Recheck);
            await (ask is null ? wait : Task.WhenAny(ask, wait)).ConfigureAwait(false);
        }
    }

    private static bool Downed(Akka.Cluster.Cluster cluster, Member member)
    {
        var now = cluster.State.Members.FirstOrDefault(m => m.UniqueAddress.Equals(member.UniqueAddress));
        return now is null || Gone(now.Status);
    }

    private static bool Gone(MemberStatus status) => status is MemberStatus.Down or MemberStatus.Removed;
}
