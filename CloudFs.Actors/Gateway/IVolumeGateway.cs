// What the front ends (NBD, HTTP) need of volumes; the actor layer implements it over the sharded VolumeActors.
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Gateway;

/// <summary>
/// Block access to volumes for NBD and HTTP. Offsets and lengths are bytes, 512-aligned.
/// Errors are the engine's exceptions (<see cref="InvalidRangeException"/>, <see cref="LogFullException"/>,
/// <see cref="DataCorruptionException"/>, <see cref="NotPrimaryException"/>, <see cref="VolumeNotFoundException"/>).
/// </summary>
public interface IVolumeGateway
{
    Task<IReadOnlyList<VolumeInfo>> ListAsync(CancellationToken ct = default);
    Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct = default);
    /// <summary>The volume a user's word designates: its 40-hex id or its name (`newdisk --name`); null when none.</summary>
    Task<VolumeInfo?> FindAsync(string volume, CancellationToken ct = default);
    ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default);
    /// <summary>Completes once appended; with <paramref name="fua"/> once durable.</summary>
    /// <param name="attachment">The lease of the read-write attachment the write is made under (an NBD session's): the
    /// volume's writer refuses it (<see cref="Volumes.Attachments.AttachmentFencedException"/>) once another holder took the
    /// volume. 0: none (internal writers, HTTP).</param>
    ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, long attachment = 0, CancellationToken ct = default);
    /// <summary>WRITE_ZEROES and TRIM: the range reads as zeros afterwards.</summary>
    ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, long attachment = 0, CancellationToken ct = default);
    /// <summary>Every write completed before the call is durable when this completes (covers all connections).</summary>
    ValueTask FlushAsync(Id160 volume, long attachment = 0, CancellationToken ct = default);
    ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default);
    /// <summary>
    /// Reads the volume as it was at <paramref name="version"/> (of its chain or one it was branched from) while it
    /// takes writes: the NBD export VOL@VERSION. An empty destination only checks the version can be read
    /// (<see cref="UnknownVersionException"/>, <see cref="VersionCompactedException"/>, <see cref="InvalidRangeException"/>).
    /// </summary>
    ValueTask ReadVersionAsync(Id160 volume, Id160 version, long offset, Memory<byte> destination, CancellationToken ct = default);
    /// <summary>
    /// The volume's size in bytes at <paramref name="version"/>: the size of the export VOL@VERSION (a version keeps the
    /// size it had, whatever resizes came after). Throws as <see cref="ReadVersionAsync"/> when it cannot be read.
    /// </summary>
    ValueTask<long> VersionSizeAsync(Id160 volume, Id160 version, CancellationToken ct = default);
    /// <summary>
    /// The ranges of [offset, offset+length) written after version <paramref name="since"/> (of the volume's chain or
    /// one it was branched from) up to <paramref name="until"/> (null: the current version), in offset order, with the
    /// version they go up to (the current one resolved to its id) and the volume's size there. Length 0 only checks the
    /// versions: <see cref="UnknownVersionException"/>, <see cref="VersionCompactedException"/>,
    /// <see cref="InvalidRangeException"/> (not in the volume's history).
    /// </summary>
    ValueTask<ChangedSinceResult> ChangedSinceAsync(Id160 volume, Id160 since, Id160? until, long offset, long length, CancellationToken ct = default);

    /// <summary>Takes, renews or takes over the volume's read-write attachment lease from its writer (docs/ATTACH.md).</summary>
    Task<AttachmentAnswer> AcquireAttachmentAsync(AcquireAttachment request, CancellationToken ct = default);
    /// <summary>Ends a lease (or whichever is held, for `cloudfs detach`).</summary>
    Task<AttachmentReleased> ReleaseAttachmentAsync(ReleaseAttachment request, CancellationToken ct = default);
}
