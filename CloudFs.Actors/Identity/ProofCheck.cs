// Judges a member's identity proof: the one place that decides whether a member is the host its role names. With TLS
// the proof must carry a node certificate of the cluster authority naming the role's host id and a signature with that
// certificate's key over the statement of this very exchange; without TLS it is taken as reported (whoever reaches the
// cluster port is trusted then), checked only for consistency with the member's role and address.
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Identity;

public static class ProofCheck
{
    /// <summary>
    /// The host <paramref name="proof"/> proves, or null with <paramref name="reason"/> (a clause that completes
    /// "member A with role R is not that host: …"). <paramref name="asked"/> is what this verifier sent,
    /// <paramref name="member"/> the address the proof came from, <paramref name="roleHost"/> the host id in its role
    /// (null when it has none), <paramref name="tls"/> this node's certificates (null without TLS).
    /// </summary>
    public static ProvenHost? Check(IdentityProof proof, ProveIdentity asked, string member, Id160? roleHost, ClusterTls? tls, out string reason)
    {
        reason = "";
        if (roleHost is not { } role) return Refuse("it carries no host role", out reason);
        if (!Id160.TryParse(proof.HostId, out var claimed)) return Refuse($"it claims the malformed host id '{proof.HostId}'", out reason);
        if (claimed != role) return Refuse($"it claims host {claimed}", out reason);
        if (proof.Address != member) return Refuse($"its proof names the address {proof.Address}", out reason);
        if (!IsSealingKey(proof.SealingKey)) return Refuse("its share-sealing key is not a P-256 public key", out reason);
        if (tls is null) return new ProvenHost(claimed, member, proof.SealingKey, null);

        if (proof.Certificate is null || proof.Signature is null) return Refuse("it presented no certificate", out reason);
        X509Certificate2 certificate;
        try { certificate = X509CertificateLoader.LoadCertificate(proof.Certificate); }
        catch (CryptographicException e) { return Refuse($"its certificate does not parse ({e.Message.TrimEnd('.')})", out reason); }
        using (certificate)
        {
            if (!tls.TryValidate(certificate, TlsPeerRole.Client, out var identity, out var invalid))
                return Refuse($"its certificate is refused: {invalid}", out reason);
            if (identity!.HostId is not { } certified) return Refuse($"its certificate is {identity}'s, not a node's", out reason);
            if (certified != role) return Refuse($"its certificate names host {certified}", out reason);
            if (!Id160.TryParse(asked.Verifier, out var verifier)) return Refuse("the verifier's own id is malformed", out reason);
            var statement = IdentityStatement.Encode(asked.Nonce, verifier, claimed, proof.Address, proof.SealingKey);
            bool verified;
            try { verified = IdentityStatement.Verify(certificate, statement, proof.Signature); }
            catch (CryptographicException) { verified = false; }
            if (!verified) return Refuse($"its certificate names host {certified}, but its signature over this proof does not verify with it", out reason);
            return new ProvenHost(claimed, member, proof.SealingKey, identity);
        }
    }

    private static ProvenHost? Refuse(string why, out string reason)
    {
        reason = why;
        return null;
    }

    private static bool IsSealingKey(byte[]? spki)
    {
        if (spki is null || spki.Length == 0) return false;
        try
        {
            using var key = ECDiffieHellman.Create();
            key.ImportSubjectPublicKeyInfo(spki, out var read);
            return read == spki.Length && key.KeySize == 256;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>The prover's side: the proof this host gives <paramref name="asked"/>, signed with its node certificate
    /// when <paramref name="tls"/> is given.</summary>
    public static IdentityProof Prove(ProveIdentity asked, Id160 self, string address, byte[] sealingKey, ClusterTls? tls)
    {
        if (tls is null || !Id160.TryParse(asked.Verifier, out var verifier)) return new IdentityProof(self.ToString(), address, sealingKey, null, null);
        var statement = IdentityStatement.Encode(asked.Nonce, verifier, self, address, sealingKey);
        return new IdentityProof(self.ToString(), address, sealingKey, tls.Certificate.RawData, IdentityStatement.Sign(tls.Certificate, statement));
    }
}
