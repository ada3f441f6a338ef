// Floor searches on sorted longs, the index's innermost loops: branch-free, without bounds checks (callers pass
// ranges inside their arrays), and a vector count for the 16-key runs under the root's summary.
namespace CloudFs.BlockDevice.Index;

using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

internal static class SortedSearch
{
    /// <summary>Index of the last element of <paramref name="a"/>[0..<paramref name="n"/>) that is ≤ <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Floor(long[] a, int n, long key)
    {
        if ((uint)n > (uint)a.Length) throw new ArgumentOutOfRangeException(nameof(n));
        return Floor(ref MemoryMarshal.GetArrayDataReference(a), n, key);
    }

    /// <summary>The same on <paramref name="n"/> longs from <paramref name="r"/> (the caller vouches they exist).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Floor(ref long r, int n, long key)
    {
        if (n == 0 || r > key) return -1;
        // Invariant: a[lo] ≤ key, and the answer is in [lo, lo + len). Halving without a data-dependent branch
        // keeps the pipeline full; the compiler turns the select into a conditional move.
        int lo = 0, len = n;
        while (len > 1)
        {
            int half = len >> 1;
            lo = Unsafe.Add(ref r, lo + half) <= key ? lo + half : lo;
            len -= half;
        }
        return lo;
    }

    /// <summary>
    /// How many of the sorted <paramref name="n"/> (1..16) longs from <paramref name="r"/> are ≤ <paramref name="key"/>
    /// (the floor's index + 1). Reads 16 longs whatever <paramref name="n"/> is: the caller guarantees they exist.
    /// The loads are independent, so a cache miss among them does not queue behind another.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int CountAtMost16(ref long r, int n, long key)
    {
        uint le;
        if (Vector512.IsHardwareAccelerated)
        {
            var k = Vector512.Create(key);
            le = (uint)Vector512.LessThanOrEqual(Vector512.LoadUnsafe(ref r), k).ExtractMostSignificantBits()
                | (uint)Vector512.LessThanOrEqual(Vector512.LoadUnsafe(ref r, 8), k).ExtractMostSignificantBits() << 8;
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var k = Vector256.Create(key);
            le = (uint)Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref r), k).ExtractMostSignificantBits()
                | (uint)Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref r, 4), k).ExtractMostSignificantBits() << 4
                | (uint)Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref r, 8), k).ExtractMostSignificantBits() << 8
                | (uint)Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref r, 12), k).ExtractMostSignificantBits() << 12;
        }
        else
        {
            le = 0;
            for (int j = 0; j < 16; j++) le |= (Unsafe.Add(ref r, j) <= key ? 1u : 0u) << j;
        }
        // Sorted: the elements ≤ key are a prefix, so counting them (within the n that are valid) is the answer.
        return BitOperations.PopCount(le & ((1u << n) - 1));
    }
}
