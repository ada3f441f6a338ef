// Floor search on a sorted long array, the index's innermost loop: branch-free and without bounds checks
// (the caller passes a length within the array).
namespace CloudFs.BlockDevice.Index;

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

internal static class SortedSearch
{
    /// <summary>Index of the last element of <paramref name="a"/>[0..<paramref name="n"/>) that is ≤ <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Floor(long[] a, int n, long key)
    {
        if ((uint)n > (uint)a.Length) throw new ArgumentOutOfRangeException(nameof(n));
        ref long r = ref MemoryMarshal.GetArrayDataReference(a);
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
}
