// Changes bytes of a log file that a running store holds locked, the way a disk goes bad under it: the file is opened
// without taking its lock (a FileStream would ask for one and be refused) and the change is made durable, so the
// store's next O_DIRECT read sees it.
using System.Runtime.InteropServices;
using CloudFs.BlockDevice.Device;
using Microsoft.Win32.SafeHandles;

namespace CloudFs.Tests.Engine;

internal static class HeldLogFile
{
    /// <summary>Opens the file without its lock (the running store holds it).</summary>
    private static SafeFileHandle Open(string path)
    {
        var fd = NativeMethods.Open(path, NativeMethods.O_RDWR | NativeMethods.O_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"cannot open {path}: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The first 512-aligned offset where <paramref name="needle"/> starts in the file, or -1.</summary>
    public static long Find(string path, ReadOnlySpan<byte> needle)
    {
        using var handle = Open(path);
        var buffer = new byte[1 << 20];
        // Successive reads overlap by at least the needle, so a match across two reads is found too.
        var step = (buffer.Length - needle.Length) & ~511;
        for (long at = 0; ; at += step)
        {
            var n = RandomAccess.Read(handle, buffer, at);
            if (n < needle.Length) return -1;
            for (var i = 0; i + needle.Length <= n; i += 512)
                if (buffer.AsSpan(i, needle.Length).SequenceEqual(needle)) return at + i;
        }
    }

    /// <summary>Bytes of the file as the kernel has them now.</summary>
    public static byte[] Read(string path, long offset, int length)
    {
        using var handle = Open(path);
        var b = new byte[length];
        if (RandomAccess.Read(handle, b, offset) != length) throw new IOException($"{path} has no {length} bytes at {offset}");
        return b;
    }

    public static void FlipBit(string path, long offset, int bit = 0)
    {
        using var handle = Open(path);
        var fd = (int)handle.DangerousGetHandle();
        var b = new byte[1];
        if (RandomAccess.Read(handle, b, offset) != 1) throw new IOException($"{path} has no byte at {offset}");
        b[0] ^= (byte)(1 << bit);
        RandomAccess.Write(handle, b, offset);
        if (NativeMethods.Fdatasync(fd) != 0) throw new IOException($"fdatasync of {path} failed");
    }
}
