// One host's digest of a volume for `cloudfs verify --deep`: a digest per fixed range of its live content, as of one
// version, so replicas can be compared range by range without moving the data.
namespace CloudFs.BlockDevice;

/// <param name="Lsn">The head the digests are of (the volume did not move while they were computed).</param>
/// <param name="Version">That head's version.</param>
/// <param name="RangeBytes">The bytes each digest covers (the last range may be shorter).</param>
/// <param name="Digests">20 bytes per range, in order: H over (offset, bytes) of every stored block that is not all zeros
/// (holes and zeroed blocks add nothing, so two copies that read alike digest alike however they were written).</param>
/// <param name="Unreadable">Ranges (by index) this host cannot read: a block fails its checksum or is in the damage map.</param>
public sealed record VolumeDigest(long Lsn, Id160 Version, long RangeBytes, byte[] Digests, IReadOnlyList<int> Unreadable)
{
    public const int DigestSize = Id160.Size;
    public int Count => Digests.Length / DigestSize;
    public ReadOnlySpan<byte> DigestOf(int range) => Digests.AsSpan(range * DigestSize, DigestSize);
}

/// <summary>The volume's head moved while its digest was computed: the digests would mix two versions.</summary>
public sealed class VolumeMovedException(Id160 volume, long fromLsn, long toLsn)
    : CloudFsException($"volume {volume} moved from lsn {fromLsn} to lsn {toLsn} while its digest was computed")
{
    public long ToLsn { get; } = toLsn;
}
