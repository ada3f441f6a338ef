// Wraps the node's IVolumeGateway so that NBD and HTTP I/O is counted and timed in one place.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Metrics;

internal sealed class MeteredVolumeGateway(IVolumeGateway inner, HostMetrics metrics) : IVolumeGateway
{
    public Task<IReadOnlyList<VolumeInfo>> ListAsync(CancellationToken ct = default) => inner.ListAsync(ct);
    public Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct = default) => inner.GetAsync(volume, ct);
    public Task<VolumeInfo?> FindAsync(string volume, CancellationToken ct = default) => inner.FindAsync(volume, ct);
    public ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default)
        => inner.MapAsync(volume, offset, length, ct);
    public ValueTask<ChangedSinceResult> ChangedSinceAsync(Id160 volume, Id160 since, Id160? until, long offset, long length, CancellationToken ct = default)
        => inner.ChangedSinceAsync(volume, since, until, offset, length, ct);
    public Task<AttachmentAnswer> AcquireAttachmentAsync(AcquireAttachment request, CancellationToken ct = default) => inner.AcquireAttachmentAsync(request, ct);
    public Task<AttachmentReleased> ReleaseAttachmentAsync(ReleaseAttachment request, CancellationToken ct = default) => inner.ReleaseAttachmentAsync(request, ct);

    // Pooled builders: the per-request state machine is reused instead of allocated on every I/O.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        var start = Begin();
        try
        {
            await inner.ReadAsync(volume, offset, destination, ct);
            metrics.Reads.Inc();
            metrics.ReadBytes.Inc(destination.Length);
        }
        catch
        {
            metrics.ReadErrors.Inc();
            throw;
        }
        finally { End(metrics.ReadLatency, start); }
    }

    /// <summary>A read of an older version (VOL@VERSION) counts as a read.</summary>
    public async ValueTask ReadVersionAsync(Id160 volume, Id160 version, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        var start = Begin();
        try
        {
            await inner.ReadVersionAsync(volume, version, offset, destination, ct);
            metrics.Reads.Inc();
            metrics.ReadBytes.Inc(destination.Length);
        }
        catch
        {
            metrics.ReadErrors.Inc();
            throw;
        }
        finally { End(metrics.ReadLatency, start); }
    }

    /// <summary>A question, not a read: not counted.</summary>
    public ValueTask<long> VersionSizeAsync(Id160 volume, Id160 version, CancellationToken ct = default) => inner.VersionSizeAsync(volume, version, ct);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, long attachment = 0, CancellationToken ct = default)
    {
        var start = Begin();
        try
        {
            await inner.WriteAsync(volume, offset, data, fua, attachment, ct);
            metrics.Writes.Inc();
            metrics.WrittenBytes.Inc(data.Length);
        }
        catch
        {
            metrics.WriteErrors.Inc();
            throw;
        }
        finally { End(metrics.WriteLatency, start); }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, long attachment = 0, CancellationToken ct = default)
    {
        var start = Begin();
        try
        {
            await inner.WriteZeroesAsync(volume, offset, length, fua, attachment, ct);
            metrics.ZeroWrites.Inc();
        }
        catch
        {
            metrics.WriteErrors.Inc();
            throw;
        }
        finally { End(metrics.WriteLatency, start); }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask FlushAsync(Id160 volume, long attachment = 0, CancellationToken ct = default)
    {
        var start = Begin();
        try
        {
            await inner.FlushAsync(volume, attachment, ct);
            metrics.Flushes.Inc();
        }
        catch
        {
            metrics.FlushErrors.Inc();
            throw;
        }
        finally { End(metrics.FlushLatency, start); }
    }

    private long Begin()
    {
        metrics.InFlight.Inc();
        return Stopwatch.GetTimestamp();
    }

    private void End(Prometheus.Histogram histogram, long start)
    {
        metrics.InFlight.Dec();
        histogram.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
    }
}
