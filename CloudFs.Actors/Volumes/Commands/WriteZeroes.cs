// Command: WRITE_ZEROES / TRIM of a 512-aligned range; answered with VolumeAck.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Commands;

public sealed record WriteZeroes(Id160 VolumeId, long Offset, long Length, bool Fua) : IWithVolumeId, IVolumeProtocolMessage
{
    /// <summary>As <see cref="Write.RequestId"/>.</summary>
    public long RequestId { get; init; }

    /// <summary>As <see cref="Write.Attachment"/>.</summary>
    public long Attachment { get; init; }
}
