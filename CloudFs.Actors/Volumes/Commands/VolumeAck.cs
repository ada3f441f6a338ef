// Reply to Write, WriteZeroes and Flush: the volume's lsn after the command.
using CloudFs.Actors.Serialization;

namespace CloudFs.Actors.Volumes.Commands;

public sealed record VolumeAck(long Lsn) : IVolumeProtocolMessage;
