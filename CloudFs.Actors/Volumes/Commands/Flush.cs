// Command: make every write acknowledged before it durable; answered with VolumeAck.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Commands;

public sealed record Flush(Id160 VolumeId) : IWithVolumeId, IVolumeProtocolMessage;
