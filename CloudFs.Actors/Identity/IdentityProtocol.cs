// The identity proof between hosts (Hyperion control messages): a node's verifier asks a member's host agent to prove
// that it is the host its role names, and the agent answers with what the verifier then checks (ProofCheck).
using CloudFs.Actors.Serialization;

namespace CloudFs.Actors.Identity;

/// <summary>Prove who you are to host <paramref name="Verifier"/>, over the fresh <paramref name="Nonce"/>; answered with
/// an <see cref="IdentityProof"/>.</summary>
public sealed record ProveIdentity(string Verifier, byte[] Nonce) : IControlMessage;

/// <summary>
/// A member's answer: its host id, its cluster address and the public key shares for it are sealed to
/// (<c>LogStore.Ownership.HostPublicKey</c>, P-256 ECDH SubjectPublicKeyInfo). With TLS also its node certificate (DER) and an
/// ECDSA signature with that certificate's key over <see cref="IdentityStatement"/>; both null without TLS.
/// </summary>
public sealed record IdentityProof(string HostId, string Address, byte[] SealingKey, byte[]? Certificate, byte[]? Signature) : IControlMessage;

/// <summary>A host agent that just started tells the other members' verifiers it can prove itself now: a verifier
/// that asked before the agent existed (its member is Up a moment before its agent starts) asks again at once.</summary>
public sealed record ReadyToProve : IControlMessage
{
    public static readonly ReadyToProve Instance = new();
}
