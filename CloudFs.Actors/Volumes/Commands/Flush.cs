// Command: make every write acknowledged before it durable; answered with VolumeAck.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Commands;

public sealed record Flush(Id160 VolumeId) : IWithVolumeId, IVolumeProtocolMessage
{
    /// <summary>As <see cref="Write.Attachment"/>: a superseded holder's flush is refused too (it learns its writes
    /// did not land).</summary>
    public long Attachment { get; init; }
}
