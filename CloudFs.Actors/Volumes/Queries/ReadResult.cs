// Reply to Read: exactly the requested bytes (zeros for holes).
using CloudFs.Actors.Serialization;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record ReadResult(ReadOnlyMemory<byte> Data) : IVolumeProtocolMessage;
