// Whether any member of the cluster serves a read-write NBD attachment of a volume: asked by a new primary (after a
// failover) so that it keeps fresh holders out only when a previous holder may still be writing through it. Every
// member that is not down or removed is asked (this one too) the question `cloudfs rm` asks (CountAttachments); a
// member that is unreachable or does not answer in time may hold one.
using Akka.Actor;
using Akka.Cluster;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Attachments;

internal static class ReadWriteAttachmentCensus
{
    /// <summary>True when every live member answered within <paramref name="timeout"/> that it serves no read-write
    /// attachment of <paramref name="volume"/>; false when one does, or may (unreachable, silent). True without a
    /// cluster.</summary>
    public static async Task<bool> NoneAsync(ActorSystem system, Id160 volume, TimeSpan timeout)
    {
        Akka.Cluster.Cluster cluster;
        try { cluster = Akka.Cluster.Cluster.Get(system); }
        catch (Exception) { return true; } // Not a clustered system (tests): no other node writes through this one.
        var state = cluster.State;
        var members = state.Members.Where(m => m.Status is not (MemberStatus.Down or MemberStatus.Removed)).ToArray();
        if (members.Length == 0 || members.Any(m => state.Unreachable.Contains(m))) return false;
        var question = new CountAttachments(volume.ToString());
        var answers = await Task.WhenAll(members.Select(async m =>
        {
            try
            {
                var management = system.ActorSelection(new RootActorPath(m.Address) / "user" / ManagementActor.Name);
                return (await management.Ask<AttachmentCount>(question, timeout).ConfigureAwait(false)).ReadWrite;
            }
            catch (Exception) { return -1; }
        })).ConfigureAwait(false);
        return answers.All(n => n == 0);
    }
}
