// Identity proofs judged on their own: with TLS a proof holds only with a node certificate of the cluster authority
// that names the member's role host, signed over this very exchange (nonce, verifier, prover, address, sealing key);
// without TLS it is taken as reported, checked only against the member's role and address.
using System.Security.Cryptography;
using CloudFs.Actors.Identity;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Security;

public sealed class ProofCheckTests : IDisposable
{
    private const string Member = "akka.tcp://cloudfs@127.0.6.50:4053";
    private readonly TestAuthority _ca = new();
    private readonly Id160 _verifier = Id160.Random();
    private readonly Id160 _host = Id160.Random();
    private readonly byte[] _sealingKey;

    public ProofCheckTests()
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        _sealingKey = key.ExportSubjectPublicKeyInfo();
    }

    public void Dispose() => _ca.Dispose();

    private ProveIdentity Ask() => new(_verifier.ToString(), RandomNumberGenerator.GetBytes(32));

    private ProvenHost? Check(IdentityProof proof, ProveIdentity asked, ClusterTls? tls, out string reason) =>
        ProofCheck.Check(proof, asked, Member, _host, tls, out reason);

    [Fact]
    public void A_proof_signed_with_the_certificate_of_the_role_host_proves_that_host_and_its_sealing_key()
    {
        using var verifierTls = _ca.LoadNode("verifier", _verifier);
        using var proverTls = _ca.LoadNode("prover", _host);
        var asked = Ask();
        var proven = Check(ProofCheck.Prove(asked, _host, Member, _sealingKey, proverTls), asked, verifierTls, out var reason);
        Assert.True(proven is not null, reason);
        Assert.Equal(_host, proven.HostId);
        Assert.Equal(_sealingKey, proven.SealingKey);
        Assert.Equal(_host, proven.Certificate!.HostId);
    }

    [Fact]
    public void A_member_with_another_hosts_valid_certificate_is_refused_whether_it_claims_its_role_or_the_certificates_host()
    {
        using var verifierTls = _ca.LoadNode("verifier", _verifier);
        var other = Id160.Random();
        using var otherTls = _ca.LoadNode("other", other);
        var asked = Ask();
        Assert.Null(Check(ProofCheck.Prove(asked, _host, Member, _sealingKey, otherTls), asked, verifierTls, out var reason));
        Assert.Equal($"its certificate names host {other}", reason);
        Assert.Null(Check(ProofCheck.Prove(asked, other, Member, _sealingKey, otherTls), asked, verifierTls, out reason));
        Assert.Equal($"it claims host {other}", reason);
    }

    [Fact]
    public void A_replayed_proof_or_one_with_a_swapped_sealing_key_or_address_does_not_verify()
    {
        using var verifierTls = _ca.LoadNode("verifier", _verifier);
        using var proverTls = _ca.LoadNode("prover", _host);
        var earlier = Ask();
        var proof = ProofCheck.Prove(earlier, _host, Member, _sealingKey, proverTls);
        Assert.Null(Check(proof, Ask(), verifierTls, out var reason));
        Assert.Contains("signature over this proof does not verify", reason);

        using var attacker = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        Assert.Null(Check(proof with { SealingKey = attacker.ExportSubjectPublicKeyInfo() }, earlier, verifierTls, out reason));
        Assert.Contains("signature over this proof does not verify", reason);

        // Relayed from another member: the prover signs its own address, which is not the member's that answered.
        var relayed = ProofCheck.Prove(earlier, _host, "akka.tcp://cloudfs@127.0.6.51:4053", _sealingKey, proverTls);
        Assert.Null(Check(relayed, earlier, verifierTls, out reason));
        Assert.Equal("its proof names the address akka.tcp://cloudfs@127.0.6.51:4053", reason);
    }

    [Fact]
    public void With_tls_a_proof_without_a_certificate_an_operators_or_another_authoritys_is_refused()
    {
        using var verifierTls = _ca.LoadNode("verifier", _verifier);
        var asked = Ask();
        Assert.Null(Check(ProofCheck.Prove(asked, _host, Member, _sealingKey, null), asked, verifierTls, out var reason));
        Assert.Equal("it presented no certificate", reason);

        using var operatorTls = ClusterTls.Load(_ca.Operator("admin"));
        var signed = ProofCheck.Prove(asked, _host, Member, _sealingKey, operatorTls);
        Assert.Null(Check(signed, asked, verifierTls, out reason));
        Assert.Equal("its certificate is operator admin's, not a node's", reason);

        using var foreign = new TestAuthority();
        using var foreignTls = foreign.LoadNode("prover", _host);
        Assert.Null(Check(ProofCheck.Prove(asked, _host, Member, _sealingKey, foreignTls), asked, verifierTls, out reason));
        Assert.Contains("is not one of this cluster's", reason);
    }

    [Fact]
    public void Without_tls_a_proof_is_taken_as_reported_but_must_match_the_role_and_the_address()
    {
        var asked = Ask();
        var proven = Check(ProofCheck.Prove(asked, _host, Member, _sealingKey, null), asked, null, out _);
        Assert.Equal(_host, proven!.HostId);
        Assert.Null(proven.Certificate);
        Assert.Null(Check(ProofCheck.Prove(asked, Id160.Random(), Member, _sealingKey, null), asked, null, out var reason));
        Assert.StartsWith("it claims host", reason);
        Assert.Null(ProofCheck.Check(ProofCheck.Prove(asked, _host, Member, _sealingKey, null), asked, Member, null, null, out reason));
        Assert.Equal("it carries no host role", reason);
        Assert.Null(Check(ProofCheck.Prove(asked, _host, Member, [1, 2, 3], null), asked, null, out reason));
        Assert.Equal("its share-sealing key is not a P-256 public key", reason);
    }
}
