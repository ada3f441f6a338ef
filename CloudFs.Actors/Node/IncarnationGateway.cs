// The node's gateway for its front ends (NBD, HTTP): the current incarnation's, so their listeners and connections
// outlive a restart of the node's membership. A request that meets the gap between two incarnations waits for the next.
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

internal sealed class IncarnationGateway(Func<NodeIncarnation> current, TimeSpan wait) : IVolumeGateway
{
    public Task<IReadOnlyList<VolumeInfo>> ListAsync(CancellationToken ct = default) =>
        Live() is { } g ? g.ListAsync(ct) : Later(ct, g => g.ListAsync(ct));

    public Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct = default) =>
        Live() is { } g ? g.GetAsync(volume, ct) : Later(ct, g => g.GetAsync(volume, ct));

    public Task<VolumeInfo?> FindAsync(string volume, CancellationToken ct = default) =>
        Live() is { } g ? g.FindAsync(volume, ct) : Later(ct, g => g.FindAsync(volume, ct));

    public ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default) =>
        Live() is { } g ? g.ReadAsync(volume, offset, destination, ct) : new ValueTask(Later(ct, g => g.ReadAsync(volume, offset, destination, ct).AsTask()));

    public ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, long attachment = 0, CancellationToken ct = default) =>
        Live() is { } g ? g.WriteAsync(volume, offset, data, fua, attachment, ct) : new ValueTask(Later(ct, g => g.WriteAsync(volume, offset, data, fua, attachment, ct).AsTask()));

    public ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, long attachment = 0, CancellationToken ct = default) =>
        Live() is { } g ? g.WriteZeroesAsync(volume, offset, length, fua, attachment, ct) : new ValueTask(Later(ct, g => g.WriteZeroesAsync(volume, offset, length, fua, attachment, ct).AsTask()));

    public ValueTask FlushAsync(Id160 volume, long attachment = 0, CancellationToken ct = default) =>
        Live() is { } g ? g.FlushAsync(volume, attachment, ct) : new ValueTask(Later(ct, g => g.FlushAsync(volume, attachment, ct).AsTask()));

    public ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default) =>
        Live() is { } g ? g.MapAsync(volume, offset, length, ct) : new ValueTask<IReadOnlyList<MappedRange>>(Later(ct, g => g.MapAsync(volume, offset, length, ct).AsTask()));

    public ValueTask ReadVersionAsync(Id160 volume, Id160 version, long offset, Memory<byte> destination, CancellationToken ct = default) =>
        Live() is { } g ? g.ReadVersionAsync(volume, version, offset, destination, ct)
            : new ValueTask(Later(ct, g => g.ReadVersionAsync(volume, version, offset, destination, ct).AsTask()));

    public ValueTask<long> VersionSizeAsync(Id160 volume, Id160 version, CancellationToken ct = default) =>
        Live() is { } g ? g.VersionSizeAsync(volume, version, ct) : new ValueTask<long>(Later(ct, g => g.VersionSizeAsync(volume, version, ct).AsTask()));

    public ValueTask<ChangedSinceResult> ChangedSinceAsync(Id160 volume, Id160 since, Id160? until, long offset, long length, CancellationToken ct = default) =>
        Live() is { } g ? g.ChangedSinceAsync(volume, since, until, offset, length, ct)
            : new ValueTask<ChangedSinceResult>(Later(ct, g => g.ChangedSinceAsync(volume, since, until, offset, length, ct).AsTask()));

    public Task<AttachmentAnswer> AcquireAttachmentAsync(AcquireAttachment request, CancellationToken ct = default) =>
        Live() is { } g ? g.AcquireAttachmentAsync(request, ct) : Later(ct, g => g.AcquireAttachmentAsync(request, ct));

    public Task<AttachmentReleased> ReleaseAttachmentAsync(ReleaseAttachment request, CancellationToken ct = default) =>
        Live() is { } g ? g.ReleaseAttachmentAsync(request, ct) : Later(ct, g => g.ReleaseAttachmentAsync(request, ct));

    /// <summary>The current incarnation's gateway while its actor system runs (the hot path: one field read, one check).</summary>
    private IVolumeGateway? Live() => current() is { Alive: true } incarnation ? incarnation.Gateway : null;

    private async Task Later(CancellationToken ct, Func<IVolumeGateway, Task> call) => await call(await NextAsync(ct).ConfigureAwait(false)).ConfigureAwait(false);

    private async Task<T> Later<T>(CancellationToken ct, Func<IVolumeGateway, Task<T>> call) => await call(await NextAsync(ct).ConfigureAwait(false)).ConfigureAwait(false);

    /// <summary>The gateway of the incarnation that replaces the one that ended, once it is Up.</summary>
    private async Task<IVolumeGateway> NextAsync(CancellationToken ct) =>
        (await NodeIncarnation.LiveAsync(current(), wait, ct).ConfigureAwait(false)).Gateway;
}
