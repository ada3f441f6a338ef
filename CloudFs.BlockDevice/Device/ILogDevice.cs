// What the log stores its bytes on, and all the log knows of it (after microsoft/FASTER's IDevice): aligned reads and
// writes, a flush that makes completed writes durable, its size, path and kind. FileDevice is the real one; the
// store wraps it in a FailStopDevice, and tests put a FaultyDevice in between.
namespace CloudFs.BlockDevice.Device;

internal enum DeviceKind
{
    /// <summary>A regular file (created sparse when missing, pinned with flock).</summary>
    File,
    /// <summary>A kernel block device (pinned with O_EXCL).</summary>
    BlockDevice,
}

internal interface ILogDevice : IDisposable
{
    /// <summary>The full path it was opened at (what every error message names).</summary>
    string Path { get; }

    /// <summary>Usable bytes: a multiple of 4 KiB.</summary>
    long Size { get; }

    DeviceKind Kind { get; }

    /// <summary>True when driven with O_DIRECT, false on the buffered fallback (fdatasync still makes writes durable).</summary>
    bool IsDirectIo { get; }

    /// <summary>Writes a 4 KiB aligned span at a 4 KiB aligned offset, all of it, or throws <see cref="DeviceException"/>
    /// (then any part of it may have landed).</summary>
    void Write(ReadOnlySpan<byte> data, long offset);

    /// <summary>Reads a 4 KiB aligned span at a 4 KiB aligned offset, all of it, or throws <see cref="DeviceException"/>.</summary>
    void Read(Span<byte> destination, long offset);

    /// <summary>
    /// Reads a 512-aligned span through the kernel's page cache (a second, buffered descriptor of the same file; the
    /// kernel keeps it coherent with the O_DIRECT writes, which drop the cached pages they overwrite). With
    /// <paramref name="wait"/> false it only copies what is cached now and returns false when any of it is not (the
    /// span's bytes are then undefined); with it true it reads from the device what is missing and returns true.
    /// Throws <see cref="DeviceException"/> when the device fails. What it returns must be verified like any read.
    /// </summary>
    bool ReadCached(Span<byte> destination, long offset, bool wait);

    /// <summary>Drops the page cache's copy of a range (best effort), so the next cached read goes to the device.</summary>
    void Uncache(long offset, long length);

    /// <summary>Makes every completed write durable (fdatasync), or throws <see cref="DeviceException"/>.</summary>
    void Flush();
}
