// The store's guard around its device: after the first failed write or fdatasync it refuses every later write and
// flush. A retried fdatasync can succeed after the kernel dropped the pages it could not write ("fsyncgate"), so no
// caller (the log writer, a checkpoint) may ever turn a failure into a later success. Reads still go through: what
// was durable before stays readable while the device reads. The first failure is reported once.
namespace CloudFs.BlockDevice.Device;

internal sealed class FailStopDevice(ILogDevice inner, Action<DeviceException> failed) : ILogDevice
{
    private DeviceException? _fault;

    public string Path => inner.Path;
    public long Size => inner.Size;
    public DeviceKind Kind => inner.Kind;
    public bool IsDirectIo => inner.IsDirectIo;

    /// <summary>The first failed write or flush; null while the device is healthy.</summary>
    public DeviceException? Fault => Volatile.Read(ref _fault);

    public void Write(ReadOnlySpan<byte> data, long offset)
    {
        ThrowIfFailed();
        try { inner.Write(data, offset); }
        catch (Exception e) { throw Fail(e); }
    }

    public void Flush()
    {
        ThrowIfFailed();
        try { inner.Flush(); }
        catch (Exception e) { throw Fail(e); }
    }

    public void Read(Span<byte> destination, long offset) => inner.Read(destination, offset);

    public bool ReadCached(Span<byte> destination, long offset, bool wait) => inner.ReadCached(destination, offset, wait);

    public void Uncache(long offset, long length) => inner.Uncache(offset, length);

    public void Dispose() => inner.Dispose();

    private void ThrowIfFailed()
    {
        if (Fault is { } f)
            throw new DeviceException($"the log device {Path} failed earlier and takes no more writes ({f.Message})", f, f.Errno);
    }

    private DeviceException Fail(Exception e)
    {
        var error = e as DeviceException ?? new DeviceException($"the log device {Path} failed: {e.Message}", e, (e as IOException)?.HResult ?? 0);
        if (Interlocked.CompareExchange(ref _fault, error, null) is null) failed(error);
        return error;
    }
}
