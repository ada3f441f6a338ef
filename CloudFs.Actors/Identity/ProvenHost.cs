// One member this node verified: the host it is, where it is, and the key shares for it are sealed to.
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Identity;

/// <param name="Address">The member's cluster address (akka.tcp://cloudfs@IP:PORT).</param>
/// <param name="SealingKey">The host's share-sealing public key (P-256 ECDH SubjectPublicKeyInfo), as it proved it.</param>
/// <param name="Certificate">What its node certificate says; null without TLS (then the proof was taken as reported).</param>
public sealed record ProvenHost(Id160 HostId, string Address, byte[] SealingKey, ClusterCertificate? Certificate);
