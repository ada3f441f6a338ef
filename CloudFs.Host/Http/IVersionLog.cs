// What the HTTP API needs of the node's log for /heads, /stream, POST /log and the log-usage metrics.
// The only HTTP paths that talk to the engine directly; block data goes through IVolumeGateway.
using CloudFs.BlockDevice;

namespace CloudFs.Host.Http;

internal interface IVersionLog
{
    IReadOnlyList<VolumeInfo> ListVolumes();
    LogUsage Usage { get; }
    /// <summary>As <see cref="CloudFs.BlockDevice.Streams.VersionStreams.StreamAsync(Id160, Stream, bool, CancellationToken)"/>: throws UnknownVersion/VersionCompacted before writing anything.</summary>
    Task StreamAsync(Id160 afterVersion, Stream destination, bool follow, CancellationToken ct);
    /// <summary>As <see cref="CloudFs.BlockDevice.Streams.VersionStreams.ApplyAsync"/>: stops at the first bad entry, keeping the ones before it; a stream
    /// that creates a volume this host does not hold is refused unless <paramref name="import"/>.</summary>
    Task<ApplyResult> ApplyAsync(Stream source, bool import, CancellationToken ct);
}

/// <summary>The production <see cref="IVersionLog"/>: the node's LogStore (its current incarnation's).</summary>
internal sealed class LogStoreVersionLog(Func<LogStore> current) : IVersionLog
{
    public IReadOnlyList<VolumeInfo> ListVolumes() => current().ListVolumes();
    public LogUsage Usage => current().Usage;
    public Task StreamAsync(Id160 afterVersion, Stream destination, bool follow, CancellationToken ct)
    {
        var store = current();
        // SPEC.md: the base id streams everything, the creation entry included, so that a node that never
        // held the volume can apply it; any later version streams the entries after it.
        var (volume, _) = store.FindVersion(afterVersion);
        return afterVersion == volume
            ? store.Streams.StreamAsync(volume, 0, destination, follow, ct)
            : store.Streams.StreamAsync(afterVersion, destination, follow, ct);
    }
    public Task<ApplyResult> ApplyAsync(Stream source, bool import, CancellationToken ct) => current().Streams.ApplyAsync(source, ct, import);
}
