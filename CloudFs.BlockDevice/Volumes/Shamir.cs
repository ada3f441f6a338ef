// Shamir secret sharing over GF(2^8), byte by byte: a secret split into n shares at x = 1..n, any threshold of which
// recover it by Lagrange interpolation at x = 0; fewer reveal nothing (every secret is equally consistent with them).
using System.Security.Cryptography;

namespace CloudFs.BlockDevice.Volumes;

internal static class Shamir
{
    // GF(256) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B) and generator 3: log/exp tables make
    // multiplication and division two lookups.
    private static readonly byte[] Exp = new byte[510];
    private static readonly byte[] Log = new byte[256];

    static Shamir()
    {
        var x = 1;
        for (var i = 0; i < 255; i++)
        {
            Exp[i] = (byte)x;
            Log[x] = (byte)i;
            // x *= 3: x * 2 (xtime, reduced by 0x11B) xor x.
            var twice = x << 1;
            if ((twice & 0x100) != 0) twice ^= 0x11B;
            x = twice ^ x;
        }
        for (var i = 255; i < Exp.Length; i++) Exp[i] = Exp[i - 255];
    }

    internal static byte Mul(byte a, byte b) => a == 0 || b == 0 ? (byte)0 : Exp[Log[a] + Log[b]];

    internal static byte Div(byte a, byte b)
    {
        if (b == 0) throw new DivideByZeroException("division by zero in GF(256)");
        return a == 0 ? (byte)0 : Exp[Log[a] + 255 - Log[b]];
    }

    /// <summary>
    /// Splits <paramref name="secret"/> into <paramref name="count"/> shares (share i has x = i + 1), any
    /// <paramref name="threshold"/> of which recover it. Each share is as long as the secret.
    /// </summary>
    public static byte[][] Split(ReadOnlySpan<byte> secret, int count, int threshold) => Split(secret, count, threshold, null);

    /// <summary>
    /// As <see cref="Split(ReadOnlySpan{byte}, int, int)"/>, but with the polynomial's coefficients derived from the
    /// secret and <paramref name="context"/> (HKDF-SHA256) instead of drawn at random: every split of one secret in one
    /// context gives the same shares, so shares sealed at different times (one replica now, another after it comes
    /// back) combine. Fewer than the threshold still reveal nothing without breaking HKDF.
    /// </summary>
    public static byte[][] Split(ReadOnlySpan<byte> secret, int count, int threshold, byte[]? context)
    {
        if (count < 1 || count > 255) throw new ArgumentOutOfRangeException(nameof(count), "1..255 shares");
        if (threshold < 1 || threshold > count) throw new ArgumentOutOfRangeException(nameof(threshold), "the threshold is 1..count");
        var shares = new byte[count][];
        for (var i = 0; i < count; i++) shares[i] = new byte[secret.Length];
        // One random polynomial of degree threshold-1 per byte, constant term = the secret byte.
        Span<byte> coeffs = stackalloc byte[threshold];
        var derived = context is null || threshold == 1
            ? null
            : HKDF.DeriveKey(HashAlgorithmName.SHA256, secret.ToArray(), secret.Length * (threshold - 1), context,
                System.Text.Encoding.ASCII.GetBytes("cloudfs shamir coefficients"));
        for (var b = 0; b < secret.Length; b++)
        {
            if (derived is null) RandomNumberGenerator.Fill(coeffs);
            else derived.AsSpan(b * (threshold - 1), threshold - 1).CopyTo(coeffs[1..]);
            coeffs[0] = secret[b];
            for (var i = 0; i < count; i++)
            {
                var xi = (byte)(i + 1);
                // Horner from the highest coefficient.
                byte y = 0;
                for (var c = threshold - 1; c >= 0; c--) y = (byte)(Mul(y, xi) ^ coeffs[c]);
                shares[i][b] = y;
            }
        }
        coeffs.Clear();
        if (derived is not null) CryptographicOperations.ZeroMemory(derived);
        return shares;
    }

    /// <summary>
    /// Interpolates the shares' polynomial at x = 0. With at least the threshold of consistent shares this is the
    /// secret; with fewer (or mixed) shares it is an unrelated value, which the caller must detect.
    /// </summary>
    public static byte[] Combine(IReadOnlyList<(byte X, byte[] Y)> shares)
    {
        if (shares.Count == 0) throw new ArgumentException("no shares to combine", nameof(shares));
        var len = shares[0].Y.Length;
        for (var i = 0; i < shares.Count; i++)
        {
            if (shares[i].X == 0) throw new ArgumentException("a share at x = 0", nameof(shares));
            if (shares[i].Y.Length != len) throw new ArgumentException("shares of different lengths", nameof(shares));
            for (var j = 0; j < i; j++)
                if (shares[j].X == shares[i].X) throw new ArgumentException($"two shares at x = {shares[i].X}", nameof(shares));
        }
        // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); subtraction is xor in GF(2^8).
        Span<byte> basis = stackalloc byte[shares.Count];
        for (var i = 0; i < shares.Count; i++)
        {
            byte l = 1;
            for (var j = 0; j < shares.Count; j++)
                if (j != i) l = Mul(l, Div(shares[j].X, (byte)(shares[j].X ^ shares[i].X)));
            basis[i] = l;
        }
        var secret = new byte[len];
        for (var b = 0; b < len; b++)
        {
            byte s = 0;
            for (var i = 0; i < shares.Count; i++) s ^= Mul(shares[i].Y[b], basis[i]);
            secret[b] = s;
        }
        return secret;
    }
}
