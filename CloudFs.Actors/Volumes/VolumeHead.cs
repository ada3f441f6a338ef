// Snapshot payload: the volume's head as the engine knows it (the snapshot store never stores anything else).
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

public sealed record VolumeHead(VolumeInfo Info);
