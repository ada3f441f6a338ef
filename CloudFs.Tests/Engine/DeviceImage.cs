// Crash images for tests: a copy of a log file (and its key file) as it is on disk now, even while a store holds it.
using CloudFs.BlockDevice.Device;
using Microsoft.Win32.SafeHandles;

namespace CloudFs.Tests.Engine;

internal static class DeviceImage
{
    /// <summary>
    /// Copies <paramref name="path"/> and its key file into <paramref name="to"/>. The file is opened with plain open(2):
    /// .NET's FileStream would take a shared flock, which the running store's exclusive lock refuses.
    /// </summary>
    public static void Copy(string path, TempLog to)
    {
        var fd = NativeMethods.Open(path, NativeMethods.O_RDONLY | NativeMethods.O_CLOEXEC, 0);
        Assert.True(fd >= 0, $"cannot open {path}");
        using (var src = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read))
        using (var dst = new FileStream(to.Path, FileMode.Create, FileAccess.Write, FileShare.None))
            src.CopyTo(dst);
        if (File.Exists(path + ".keys")) File.Copy(path + ".keys", to.Path + ".keys", overwrite: true);
    }
}
