// The protocol of a volume's read-write attachment lease, which the volume's writer (its VolumeActor on the primary)
// keeps: one holder at a time (an NBD connection that chose a writable export, `cloudfs mount` through one), renewed
// while it lives, expired when it stops renewing (docs/ATTACH.md, "One writer at a time").
// A lease is a number, its epoch: (the writer's view << 32) | a count of the grants in that view, so a later grant
// always has a larger one, through any primary. Every write of the holder carries it (Write.Attachment), and the
// writer refuses one whose lease was superseded (WriterAttachment.Refusal): the fencing token.
// Strings, not Id160: these are control messages (Hyperion with known types only).
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Attachments;

/// <summary>
/// Asks for the volume's attachment. <paramref name="Lease"/> 0: a new holder; otherwise the holder's lease, renewed
/// (or reclaimed after the primary moved). <paramref name="Force"/> takes the lease from whoever holds it.
/// <paramref name="Probe"/> only asks whether it would be granted (NBD_OPT_INFO): nothing changes.
/// <paramref name="Name"/>: the name the client gave its attachment (NBD export VOLUME#NAME), so that it reconnects to
/// its lease after its connections broke, and is refused for good once that lease was superseded; null: none.
/// <paramref name="Client"/>: the client host asking (its address; null: not known). A fresh holder refused because
/// the same client holds the lease through another node is told to ask again shortly (that connection may be ending).
/// Answered with <see cref="AttachmentGranted"/>, <see cref="AttachmentRefused"/> or a VolumeFailure (not the primary).
/// </summary>
public sealed record AcquireAttachment(string Volume, string Holder, long Lease, bool Force = false, bool Probe = false, string? Name = null,
    string? Client = null)
    : IWithVolumeId, IControlMessage
{
    public Id160 VolumeId => Id160.Parse(Volume);
}

/// <summary>Ends a lease (<paramref name="Lease"/>: its holder lets go), or, when <paramref name="Lease"/> is 0
/// (`cloudfs detach`), whichever lease is held: only if its holder stopped renewing, unless <paramref name="Force"/>.
/// Answered with <see cref="AttachmentReleased"/>.</summary>
public sealed record ReleaseAttachment(string Volume, long Lease, bool Force = false) : IWithVolumeId, IControlMessage
{
    public Id160 VolumeId => Id160.Parse(Volume);
}

/// <summary>The answer to <see cref="AcquireAttachment"/>: granted or refused.</summary>
public abstract record AttachmentAnswer : IControlMessage;

/// <param name="Lease">The lease's epoch: the holder renews with it and sends it with every write.</param>
/// <param name="TermMs">The lease lapses this long after the last grant unless renewed.</param>
public sealed record AttachmentGranted(long Lease, long TermMs) : AttachmentAnswer;

/// <param name="Lost">The asker held the lease and does not any more (taken over, or expired and taken, or revoked); for
/// a named attachment asking afresh: its name's lease was superseded, and it may not write again.</param>
/// <param name="RetryAfterMs">Above zero: no one holds the lease, but the primary moved moments ago and the previous
/// holder may still reclaim it; or (<paramref name="SameClient"/>) the asker's own client holds it through another
/// node, whose connection may be ending (its release on the way). Asking again after this long may succeed.</param>
/// <param name="SameClient">The holder is the asker's client host through another node: the asker waits for its
/// release only as long as a release takes (<see cref="Gateway.HeldAttachment"/>), then takes the refusal.</param>
public sealed record AttachmentRefused(string Reason, bool Lost, long RetryAfterMs = 0, bool SameClient = false) : AttachmentAnswer;

/// <param name="Holder">Who held the lease that ended (null: none ended).</param>
/// <param name="Refusal">Why a detach without force ended nothing (a live holder renews it); null otherwise.</param>
public sealed record AttachmentReleased(string? Holder, string? Refusal = null) : IControlMessage;
