// One opened Shamir share of a volume's secret view-stamp: its x, the threshold and share count of its split, and
// the share bytes. The plaintext that HostKey seals for a holder, and what a holder keeps in its key file.
namespace CloudFs.BlockDevice.Volumes;

internal sealed record SecretShare(byte X, byte Threshold, byte Count, byte[] Y)
{
    public const int Size = 3 + VersionChain.SecretSize;

    public byte[] Encode()
    {
        var b = new byte[Size];
        b[0] = X;
        b[1] = Threshold;
        b[2] = Count;
        Y.CopyTo(b, 3);
        return b;
    }

    /// <summary>Null when the bytes are not a share: wrong length, x = 0, x beyond the count, or a bad threshold.</summary>
    public static SecretShare? Decode(ReadOnlySpan<byte> b)
    {
        if (b.Length != Size) return null;
        byte x = b[0], k = b[1], n = b[2];
        if (x == 0 || n == 0 || x > n || k == 0 || k > n) return null;
        return new SecretShare(x, k, n, b[3..].ToArray());
    }
}
