// The bytes a host signs to prove its identity: a domain-separated statement that binds the verifier's nonce, the
// verifier, the prover, the prover's cluster address and the key shares for it are sealed to. Signed with the private
// key of the prover's node certificate (ECDSA P-256, SHA-256, IEEE P1363 signature), checked with its public key.
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Identity;

public static class IdentityStatement
{
    /// <summary>Separates these signatures from every other use of a node's key (TLS handshakes sign other contexts).</summary>
    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("cloudfs identity proof v1\0");

    /// <summary>Domain, then the nonce, address and key each with a 16-bit big-endian length, the two host ids in between.</summary>
    public static byte[] Encode(ReadOnlySpan<byte> nonce, Id160 verifier, Id160 prover, string address, ReadOnlySpan<byte> sealingKey)
    {
        var addressBytes = Encoding.UTF8.GetBytes(address);
        if (nonce.Length > ushort.MaxValue || addressBytes.Length > ushort.MaxValue || sealingKey.Length > ushort.MaxValue)
            throw new ArgumentException("a field of the identity statement is longer than 65535 bytes");
        var bytes = new byte[Domain.Length + 2 + nonce.Length + 2 * Id160.Size + 2 + addressBytes.Length + 2 + sealingKey.Length];
        var span = bytes.AsSpan();
        Domain.CopyTo(span);
        span = span[Domain.Length..];
        span = Put(span, nonce);
        verifier.WriteTo(span);
        prover.WriteTo(span[Id160.Size..]);
        span = span[(2 * Id160.Size)..];
        span = Put(span, addressBytes);
        Put(span, sealingKey);
        return bytes;
    }

    private static Span<byte> Put(Span<byte> span, ReadOnlySpan<byte> field)
    {
        BinaryPrimitives.WriteUInt16BigEndian(span, (ushort)field.Length);
        field.CopyTo(span[2..]);
        return span[(2 + field.Length)..];
    }

    /// <summary>Signs <paramref name="statement"/> with the private key of <paramref name="certificate"/> (a node's).</summary>
    public static byte[] Sign(X509Certificate2 certificate, byte[] statement)
    {
        using var key = certificate.GetECDsaPrivateKey()
                        ?? throw new CryptographicException($"the certificate '{certificate.Subject}' has no ECDSA private key here");
        return key.SignData(statement, HashAlgorithmName.SHA256);
    }

    /// <summary>True when <paramref name="signature"/> over <paramref name="statement"/> verifies with the certificate's public key.</summary>
    public static bool Verify(X509Certificate2 certificate, byte[] statement, byte[] signature)
    {
        using var key = certificate.GetECDsaPublicKey();
        return key is not null && key.VerifyData(statement, signature, HashAlgorithmName.SHA256);
    }
}
