// Command: write 512-aligned bytes at an offset; answered with VolumeAck once appended (durable with Fua).
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Commands;

/// <summary>The sender keeps <paramref name="Data"/> unchanged until the reply (no copy is taken in-process).</summary>
public sealed record Write(Id160 VolumeId, long Offset, ReadOnlyMemory<byte> Data, bool Fua) : IWithVolumeId, IVolumeProtocolMessage
{
    /// <summary>Names the request across the gateway's repeated attempts, so the actor applies it once (0: none).</summary>
    public long RequestId { get; init; }

    /// <summary>The lease (epoch) of the read-write attachment the write is made under (an NBD session's); the writer
    /// refuses it once that lease is superseded (docs/ATTACH.md, "Fencing"). 0: none (internal writers, HTTP).</summary>
    public long Attachment { get; init; }
}
