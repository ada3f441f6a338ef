// What a live stream apply reports each time its group commit makes more of a volume durable.
namespace CloudFs.BlockDevice;

/// <summary>Entry <paramref name="Lsn"/> (public id <paramref name="Version"/>) of <paramref name="Volume"/> and all before it are durable here.</summary>
public readonly record struct ApplyProgress(Id160 Volume, long Lsn, Id160 Version);
