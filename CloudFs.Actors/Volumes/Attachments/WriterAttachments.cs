// Per actor system: the attachment leases of the volumes this node is the writer of. Kept outside the VolumeActor so
// a lease outlives the actor's passivation or restart on the same primary; a record made under an older view (the
// volume failed over and back) is replaced.
using System.Collections.Concurrent;
using Akka.Actor;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Attachments;

public sealed class WriterAttachments : IExtension
{
    /// <summary>A lease lapses this long after its holder's last renewal (holders renew every third of it).</summary>
    public static readonly TimeSpan Term = TimeSpan.FromSeconds(9);

    private readonly ConcurrentDictionary<Id160, WriterAttachment> _volumes = new();

    public static WriterAttachments Get(ActorSystem system) => system.WithExtension<WriterAttachments, WriterAttachmentsProvider>();

    /// <summary>The lease record of <paramref name="volume"/> in view <paramref name="view"/>. A new record of a volume
    /// that has changed views (failed over, or had its replicas changed) starts with a grace of one term, in which only
    /// a previous holder's renewal is granted: that holder may be writing through this primary already.</summary>
    public WriterAttachment For(Id160 volume, long view)
    {
        while (true)
        {
            var record = _volumes.GetOrAdd(volume, _ => Create(view));
            if (record.View == view) return record;
            _volumes.TryUpdate(volume, Create(view), record);
        }
    }

    private static WriterAttachment Create(long view)
    {
        var now = WriterAttachment.Now();
        return new WriterAttachment(Term, view, view > 0 ? now + (long)Term.TotalMilliseconds : now, WriterAttachment.Now);
    }
}

public sealed class WriterAttachmentsProvider : ExtensionIdProvider<WriterAttachments>
{
    public override WriterAttachments CreateExtension(ExtendedActorSystem system) => new();
}
