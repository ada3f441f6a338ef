// A volume's lifecycle after creation: to the trash and back, resize, and purge. Trash, Restore and Resize are chain
// entries the writer appends like data (replicas get them in the volume's stream, replay reapplies them); Purge is
// local to each host, like a Rewind: it drops the volume here, and replay drops it again (docs/FORMAT.md, "Lifecycle").
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>Moves a volume to the trash: a durable Trash entry; from then on nothing is written to it until restored.</summary>
    /// <param name="by">The chain's owner on this host (null when nobody claims it; refused while one does).</param>
    public async Task<VolumeInfo> TrashVolumeAsync(Id160 volume, CancellationToken ct = default, ChainClaim? by = null)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        if (Info(vol).IsTrashed) throw new VolumeInTrashException(volume);
        await AppendLifecycleAsync(vol, by, EntryKind.Trash, [], ct).ConfigureAwait(false);
        return Info(vol);
    }

    /// <summary>Takes a volume out of the trash: a durable Restore entry.</summary>
    /// <param name="by">The chain's owner on this host (null when nobody claims it; refused while one does).</param>
    public async Task<VolumeInfo> RestoreVolumeAsync(Id160 volume, CancellationToken ct = default, ChainClaim? by = null)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        if (!Info(vol).IsTrashed) throw new CloudFsException($"volume {volume} is not in the trash");
        await AppendLifecycleAsync(vol, by, EntryKind.Restore, [], ct).ConfigureAwait(false);
        return Info(vol);
    }

    /// <summary>
    /// Gives a volume a new size: a durable Resize entry. Growing adds blocks that read as zeros; shrinking drops
    /// everything beyond the new size and needs <paramref name="allowShrink"/>. The same size changes nothing.
    /// </summary>
    /// <param name="by">The chain's owner on this host (null when nobody claims it; refused while one does).</param>
    public async Task<VolumeInfo> ResizeVolumeAsync(Id160 volume, long sizeBytes, bool allowShrink, CancellationToken ct = default, ChainClaim? by = null)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        if (!ResizePayload.Valid(sizeBytes))
            throw new InvalidRangeException($"a volume size must be a positive multiple of {BlockSize} bytes up to {ResizePayload.MaxVolumeBytes}, not {sizeBytes}");
        var info = Info(vol);
        if (info.IsTrashed) throw new VolumeInTrashException(volume);
        if (sizeBytes == info.SizeBytes) return info;
        if (sizeBytes < info.SizeBytes && !allowShrink)
            throw new InvalidRangeException($"volume {volume} has {info.SizeBytes} bytes; shrinking it to {sizeBytes} drops data beyond that and needs --allow-shrink");
        var payload = new byte[ResizePayload.Size];
        new ResizePayload(sizeBytes, info.SizeBytes).Encode(payload);
        await AppendLifecycleAsync(vol, by, EntryKind.Resize, payload, ct).ConfigureAwait(false);
        return Info(vol);
    }

    private async Task AppendLifecycleAsync(VolumeState vol, ChainClaim? by, EntryKind kind, byte[] payload, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var buf = EntryCodec.BuildMetadata(kind, vol.BaseId, 0, payload, Now);
        await Submit(vol, by, -1, buf, kind, durable: true).Done.Task.ConfigureAwait(false);
        _options.Log?.Invoke($"volume {vol.BaseId}: {kind.ToString().ToLowerInvariant()} entry appended");
    }

    /// <summary>
    /// Drops a volume in the trash from this host: its secret and share leave the key file, a durable Purge entry is
    /// written, and the volume is gone from memory once it is (its blocks are dead for compaction from then on).
    /// A volume that is not in the trash is refused; one this host does not hold is a <see cref="VolumeNotFoundException"/>.
    /// </summary>
    public async Task PurgeVolumeAsync(Id160 volume, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        ct.ThrowIfCancellationRequested();
        var vol = Volume(volume);
        if (!Info(vol).IsTrashed) throw new CloudFsException($"volume {volume} is not in the trash; `cloudfs rm` moves it there first");
        var buf = EntryCodec.BuildMetadata(EntryKind.Purge, volume, 0, [], Now);
        EntryItem item;
        using (vol.LockChain())
        {
            // The purge names the head it drops (its lsn and version fields); nothing chains onto it.
            EntryCodec.SetChain(buf.Span, volume, Math.Max(1, vol.PendingLsn), Id160.Zero, vol.PendingVersion);
            // Outside every chain (no volume for the writer's lsn checks); it leaves memory on the writer thread once
            // written, so a checkpoint either holds the volume and precedes this entry, or follows it without it.
            item = new EntryItem(buf, null, EntryKind.Purge, Math.Max(1, vol.PendingLsn), vol.PendingVersion, 0, durable: true)
            {
                AfterWrite = _ => DropPurged(volume),
            };
            _keys.Forget(volume);
            vol.Secret = null;
            // The volume leaves this host: its owner's claim ends with it (a trashed volume takes no writes anyway).
            vol.Claim = null;
            _appender.Enqueue(item);
        }
        await item.Done.Task.ConfigureAwait(false);
        _options.Log?.Invoke($"volume {volume}: purged from this host");
    }

    private void DropPurged(Id160 volume)
    {
        if (!_volumes.TryRemove(volume, out var vol)) return;
        Removed(volume);
        Checkpoints.NoteChange();
        vol.Recent?.Clear();
        vol.Appended.Raise();
    }

    /// <summary>Recovery: a purge drops the volume it names; one already gone (a checkpoint after the purge) is fine.</summary>
    private string? ReplayPurge(EntryHeader h)
    {
        if (_volumes.TryRemove(h.Volume, out _)) Removed(h.Volume);
        _keys.Forget(h.Volume);
        return null;
    }

    /// <summary>The rules a lifecycle entry's payload obeys wherever it comes from (null for other kinds, and when it does).</summary>
    internal static string? CheckLifecycle(ReadOnlySpan<byte> entry, EntryHeader h) => h.Kind switch
    {
        EntryKind.Trash or EntryKind.Restore when h.PayloadLength != 0 => $"volume {h.Volume}: the {h.Kind.ToString().ToLowerInvariant()} entry at lsn {h.Lsn} carries a payload",
        EntryKind.Resize when ResizePayload.Decode(entry.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is null => $"volume {h.Volume}: the resize entry at lsn {h.Lsn} has a malformed payload",
        EntryKind.Protect => CheckProtection(entry, h),
        _ => null,
    };

    /// <summary>Under IndexLock, for a committed lifecycle entry: the volume's size or trash state (its index: IndexEntry).</summary>
    internal static void ApplyLifecycle(VolumeState v, ReadOnlySpan<byte> meta, EntryHeader h)
    {
        switch (h.Kind)
        {
            case EntryKind.Trash:
                v.TrashedAtUnixMs = Math.Max(1, h.TimestampUnixMs);
                break;
            case EntryKind.Restore:
                v.TrashedAtUnixMs = 0;
                break;
            case EntryKind.Resize:
                var p = ResizePayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength))
                        ?? throw new InvalidOperationException($"a verified resize entry of volume {h.Volume} has a malformed payload");
                v.SizeBytes = p.NewSize;
                // Damage beyond the new end is gone with the blocks.
                if (p.NewSize < p.OldSize && v.Damage.Count > 0) v.Damage.Clear(p.NewSize, p.OldSize - p.NewSize);
                break;
        }
    }
}
