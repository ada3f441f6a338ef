// Shamir sharing over GF(256): the field arithmetic, any threshold of shares recovers the secret, fewer do not.
using CloudFs.BlockDevice.Volumes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class ShamirTests
{
    /// <summary>A split: share count n, threshold k, and a seed for the secret and for which shares are picked.</summary>
    private static Gen<(int N, int K, int Seed)> Splits(int minThreshold) =>
        from n in Gen.Choose(minThreshold, 12)
        from k in Gen.Choose(minThreshold, n)
        from seed in Gen.Choose(0, int.MaxValue)
        select (n, k, seed);

    private static (byte[] Secret, byte[][] Shares, Random Rng) Split((int N, int K, int Seed) s)
    {
        var rng = new Random(s.Seed);
        var secret = new byte[VersionChain.SecretSize];
        rng.NextBytes(secret);
        return (secret, Shamir.Split(secret, s.N, s.K), rng);
    }

    private static List<(byte X, byte[] Y)> Pick(byte[][] shares, int count, Random rng) =>
        Enumerable.Range(0, shares.Length).OrderBy(_ => rng.Next()).Take(count)
            .Select(i => ((byte)(i + 1), shares[i])).ToList();

    [Fact]
    public void Field_division_undoes_multiplication_for_every_pair()
    {
        for (var a = 0; a < 256; a++)
            for (var b = 1; b < 256; b++)
            {
                var p = Shamir.Mul((byte)a, (byte)b);
                Assert.Equal((byte)a, Shamir.Div(p, (byte)b));
                Assert.Equal(p, Shamir.Mul((byte)b, (byte)a));
            }
        // x^8 + x^4 + x^3 + x + 1: 0x80 * 2 wraps to 0x1B.
        Assert.Equal(0x1B, Shamir.Mul(0x80, 2));
    }

    [Property(MaxTest = 200)]
    public Property Any_threshold_subset_of_shares_recovers_the_secret() =>
        Prop.ForAll(Arb.From(Splits(1)), s =>
        {
            var (secret, shares, rng) = Split(s);
            var picked = Pick(shares, s.K + rng.Next(s.N - s.K + 1), rng);
            return Shamir.Combine(picked).AsSpan().SequenceEqual(secret);
        });

    [Property(MaxTest = 200)]
    public Property Fewer_shares_than_the_threshold_yield_another_value() =>
        Prop.ForAll(Arb.From(Splits(2)), s =>
        {
            var (secret, shares, rng) = Split(s);
            var picked = Pick(shares, 1 + rng.Next(s.K - 1), rng);
            return !Shamir.Combine(picked).AsSpan().SequenceEqual(secret);
        });

    [Fact]
    public void A_single_share_below_threshold_two_is_uniformly_unrelated_to_the_secret()
    {
        // With threshold 2 one share is secret + a·x for a random a: over many splits of the same secret byte,
        // share 1 takes (nearly) every byte value, so it says nothing about the secret.
        var seen = new HashSet<byte>();
        var secret = new byte[] { 0x42 };
        for (var i = 0; i < 4000; i++) seen.Add(Shamir.Split(secret, 3, 2)[0][0]);
        Assert.True(seen.Count > 240, $"share 1 took only {seen.Count} distinct values");
    }

    [Fact]
    public void Combining_refuses_duplicate_or_zero_x()
    {
        var shares = Shamir.Split(new byte[4], 3, 2);
        Assert.Throws<ArgumentException>(() => Shamir.Combine([(1, shares[0]), (1, shares[0])]));
        Assert.Throws<ArgumentException>(() => Shamir.Combine([(0, shares[0])]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Shamir.Split(new byte[4], 3, 4));
    }
}
