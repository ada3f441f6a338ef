// Per actor system: the attachment leases of the volumes this node is the writer of. Kept outside the VolumeActor so
// a lease outlives the actor's passivation or restart on the same primary; a record made under an older view (the
// volume failed over and back) is replaced.
using System.Collections.Concurrent;
using Akka.Actor;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Attachments;

/// <param name="noneAttached">Whether no member serves a read-write attachment of a volume (asked when a record of a new
/// view is made): ReadWriteAttachmentCensus.</param>
public sealed class WriterAttachments(Func<Id160, Task<bool>> noneAttached) : IExtension
{
    /// <summary>A lease lapses this long after its holder's last renewal (holders renew every third of it).</summary>
    public static readonly TimeSpan Term = TimeSpan.FromSeconds(9);

    /// <summary>How long each member is given to say whether it serves a read-write attachment of a volume that just
    /// changed views.</summary>
    internal static readonly TimeSpan CensusTimeout = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<Id160, WriterAttachment> _volumes = new();

    public static WriterAttachments Get(ActorSystem system) => system.WithExtension<WriterAttachments, WriterAttachmentsProvider>();

    /// <summary>
    /// The lease record of <paramref name="volume"/> in view <paramref name="view"/>. A new record (this node became the
    /// volume's writer: it was created here, took it over, or this node restarted) starts with a grace of one term, in
    /// which only a previous holder's renewal is granted: a holder of another primary's lease may be writing through this
    /// one already. The members are asked at once whether any serves a read-write attachment of the volume; when none
    /// does (a new volume; the usual case after a primary's death: its clients went with it, or had no attachment), the
    /// grace ends as soon as they have answered. A record of an older view (a failover that this node's writer saw
    /// through, or a change of replicas; the view number of a take-over becomes current only once its entry commits) is
    /// replaced the same way, keeping its holder's unexpired lease.
    /// </summary>
    public WriterAttachment For(Id160 volume, long view)
    {
        while (true)
        {
            if (_volumes.TryGetValue(volume, out var record))
            {
                if (record.View == view) return record;
                var replacement = Create(view, record);
                if (_volumes.TryUpdate(volume, replacement, record)) return Started(volume, replacement);
            }
            else
            {
                var fresh = Create(view, null);
                if (_volumes.TryAdd(volume, fresh)) return Started(volume, fresh);
            }
        }
    }

    /// <summary>What <see cref="WriterAttachment.Refusal"/> of the volume's record says of a request made under
    /// <paramref name="lease"/>; null (admitted) when this node keeps no record of the volume.</summary>
    public string? Refusal(Id160 volume, long lease) => _volumes.TryGetValue(volume, out var record) ? record.Refusal(lease) : null;

    private WriterAttachment Started(Id160 volume, WriterAttachment record)
    {
        _ = EndGraceUnlessAttachedAsync(volume, record);
        return record;
    }

    private async Task EndGraceUnlessAttachedAsync(Id160 volume, WriterAttachment record)
    {
        bool none;
        try { none = await noneAttached(volume).ConfigureAwait(false); }
        catch (Exception) { return; } // Not known: the grace runs its course.
        if (none) record.EndGrace();
    }

    private static WriterAttachment Create(long view, WriterAttachment? previous)
    {
        var now = WriterAttachment.Now();
        var record = new WriterAttachment(Term, view, now + (long)Term.TotalMilliseconds, WriterAttachment.Now);
        previous?.HandOver(record);
        return record;
    }
}

public sealed class WriterAttachmentsProvider : ExtensionIdProvider<WriterAttachments>
{
    public override WriterAttachments CreateExtension(ExtendedActorSystem system) =>
        new(volume => ReadWriteAttachmentCensus.NoneAsync(system, volume, WriterAttachments.CensusTimeout));
}
