// CRC32C (Castagnoli) with the CPU's crc32 instruction, eight bytes at a time: every checksum of the format.
using System.Numerics;
using System.Runtime.InteropServices;

namespace CloudFs.BlockDevice.Format;

internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(0xFFFFFFFFu, data);

    /// <summary>Continues a running (non-inverted) CRC; start with 0xFFFFFFFF and invert at the end.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        // Three independent lanes would hide the instruction's latency; one lane is already several GB/s.
        foreach (var w in words) crc = BitOperations.Crc32C(crc, w);
        for (var i = words.Length * 8; i < data.Length; i++) crc = BitOperations.Crc32C(crc, data[i]);
        return crc;
    }
}
