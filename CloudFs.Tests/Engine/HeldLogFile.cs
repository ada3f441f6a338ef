// Changes bytes of a log file that a running store holds locked, the way a disk goes bad under it: the file is opened
// without taking its lock (a FileStream would ask for one and be refused) and the change is made durable, so the
// store's next O_DIRECT read sees it.
using System.Runtime.InteropServices;
using CloudFs.BlockDevice.Device;
using Microsoft.Win32.SafeHandles;

namespace CloudFs.Tests.Engine;

internal static class HeldLogFile
{
    public static void FlipBit(string path, long offset, int bit = 0)
    {
        var fd = NativeMethods.Open(path, NativeMethods.O_RDWR | NativeMethods.O_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"cannot open {path}: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        var b = new byte[1];
        if (RandomAccess.Read(handle, b, offset) != 1) throw new IOException($"{path} has no byte at {offset}");
        b[0] ^= (byte)(1 << bit);
        RandomAccess.Write(handle, b, offset);
        if (NativeMethods.Fdatasync(fd) != 0) throw new IOException($"fdatasync of {path} failed");
    }
}
