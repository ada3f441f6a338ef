// The records of secret sharing between hosts: who holds a share (host id + public key) and a share sealed for one
// host. The engine splits, seals, opens and combines them (Volumes/Ownership.cs); the cluster only carries them.
namespace CloudFs.BlockDevice;

/// <summary>A host that is to hold a share: its id and its P-256 ECDH public key (SubjectPublicKeyInfo DER, <see cref="Volumes.Ownership.HostPublicKey"/>).</summary>
public sealed record ShareHolder(Id160 Host, byte[] PublicKey);

/// <summary>
/// One Shamir share of a volume's secret view-stamp, sealed (ECIES) for the host <paramref name="Host"/>.
/// <paramref name="View"/> is the public version of the entry that began the view (the base id, or the
/// view-change entry's version); volume, host and view are bound into the seal, so a share moved to another
/// volume, host or view does not open.
/// </summary>
public sealed record SealedShare(Id160 Volume, Id160 Host, Id160 View, byte[] Payload);
