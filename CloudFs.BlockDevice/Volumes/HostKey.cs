// This host's P-256 ECDH key pair and the ECIES that carries secret shares between hosts: an ephemeral ECDH key,
// HKDF-SHA256 of the shared secret, AES-256-GCM with the share's volume, host and view as associated data.
using System.Security.Cryptography;

namespace CloudFs.BlockDevice.Volumes;

internal sealed class HostKey : IDisposable
{
    private const byte PayloadVersion = 1;
    private const int PointSize = 65;   // uncompressed P-256 point: 0x04 ‖ X ‖ Y
    private const int TagSize = 16;
    private const int KeySize = 32, NonceSize = 12;
    private static ReadOnlySpan<byte> Info => "cloudfs secret share v1"u8;
    private static readonly string P256Oid = ECCurve.NamedCurves.nistP256.Oid.Value!;

    private readonly ECDiffieHellman _key;

    private HostKey(ECDiffieHellman key)
    {
        _key = key;
        PublicKey = key.ExportSubjectPublicKeyInfo();
    }

    /// <summary>SubjectPublicKeyInfo DER, what other hosts seal shares for.</summary>
    public byte[] PublicKey { get; }

    public static HostKey Generate() => new(ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>The private key as kept in the key file (PKCS#8 DER); throws CryptographicException when it is not a P-256 key.</summary>
    public static HostKey FromPkcs8(ReadOnlySpan<byte> der)
    {
        var k = ECDiffieHellman.Create();
        try
        {
            k.ImportPkcs8PrivateKey(der, out var read);
            if (read != der.Length || k.ExportParameters(false).Curve.Oid?.Value != P256Oid)
                throw new CryptographicException("not a P-256 private key");
            return new HostKey(k);
        }
        catch { k.Dispose(); throw; }
    }

    public byte[] ExportPkcs8() { lock (_key) return _key.ExportPkcs8PrivateKey(); }

    /// <summary>Imports another host's public key; null (with the reason) when it is not a P-256 SubjectPublicKeyInfo.</summary>
    public static ECDiffieHellman? ImportPublic(ReadOnlySpan<byte> spki, out string? error)
    {
        var k = ECDiffieHellman.Create();
        try
        {
            k.ImportSubjectPublicKeyInfo(spki, out var read);
            if (read != spki.Length) { error = "trailing bytes after the public key"; k.Dispose(); return null; }
            if (k.ExportParameters(false).Curve.Oid?.Value != P256Oid) { error = "not a P-256 key"; k.Dispose(); return null; }
            error = null;
            return k;
        }
        catch (CryptographicException e) { error = e.Message; k.Dispose(); return null; }
    }

    /// <summary>Seals <paramref name="plaintext"/> for the holder of <paramref name="recipient"/>'s private key.</summary>
    public static byte[] Seal(ECDiffieHellman recipient, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associated)
    {
        using var eph = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var q = eph.ExportParameters(false).Q;
        var payload = new byte[1 + PointSize + TagSize + plaintext.Length];
        payload[0] = PayloadVersion;
        payload[1] = 0x04;
        q.X!.CopyTo(payload, 2);
        q.Y!.CopyTo(payload, 2 + 32);
        var shared = eph.DeriveRawSecretAgreement(recipient.PublicKey);
        Span<byte> okm = stackalloc byte[KeySize + NonceSize];
        Derive(shared, payload.AsSpan(1, PointSize), okm);
        using (var gcm = new AesGcm(okm[..KeySize], TagSize))
            gcm.Encrypt(okm[KeySize..], plaintext, payload.AsSpan(1 + PointSize + TagSize), payload.AsSpan(1 + PointSize, TagSize), associated);
        CryptographicOperations.ZeroMemory(okm);
        CryptographicOperations.ZeroMemory(shared);
        return payload;
    }

    /// <summary>Opens a payload sealed for this host; null with the reason when it does not open (tampered, for another key or other associated data).</summary>
    public byte[]? Open(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> associated, out string? error)
    {
        error = null;
        if (payload.Length < 1 + PointSize + TagSize) { error = "the sealed share is truncated"; return null; }
        if (payload[0] != PayloadVersion) { error = $"unknown sealed-share version {payload[0]}"; return null; }
        if (payload[1] != 0x04) { error = "the sealed share's ephemeral key is not an uncompressed point"; return null; }
        byte[] shared;
        try
        {
            using var eph = ECDiffieHellman.Create(new ECParameters
            {
                Curve = ECCurve.NamedCurves.nistP256,
                Q = new ECPoint { X = payload.Slice(2, 32).ToArray(), Y = payload.Slice(2 + 32, 32).ToArray() },
            });
            // One private key object, possibly used by several volumes' callers at once: derive one at a time.
            lock (_key) shared = _key.DeriveRawSecretAgreement(eph.PublicKey);
        }
        catch (CryptographicException) { error = "the sealed share's ephemeral key is not a point of P-256"; return null; }
        Span<byte> okm = stackalloc byte[KeySize + NonceSize];
        Derive(shared, payload.Slice(1, PointSize), okm);
        var plain = new byte[payload.Length - 1 - PointSize - TagSize];
        try
        {
            using var gcm = new AesGcm(okm[..KeySize], TagSize);
            gcm.Decrypt(okm[KeySize..], payload[(1 + PointSize + TagSize)..], payload.Slice(1 + PointSize, TagSize), plain, associated);
            return plain;
        }
        catch (AuthenticationTagMismatchException)
        {
            error = "the sealed share does not open with this host's key (tampered, or sealed for another host, volume or view)";
            return null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(okm);
            CryptographicOperations.ZeroMemory(shared);
        }
    }

    // HKDF-SHA256: the ephemeral point is the salt (binds the key to this message), a fixed label the info.
    private static void Derive(ReadOnlySpan<byte> shared, ReadOnlySpan<byte> ephemeralPoint, Span<byte> okm) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, okm, ephemeralPoint, Info);

    public void Dispose() => _key.Dispose();
}
