// Event: one engine zero entry (WRITE_ZEROES / TRIM of any 512-aligned length).
namespace CloudFs.Actors.Volumes.Events;

public sealed record ZeroesWritten(long Offset, long Length, bool Durable) : IVolumeEvent;
