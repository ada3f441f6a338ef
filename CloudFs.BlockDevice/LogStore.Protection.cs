// `cloudfs protect VERSION` / `unprotect VERSION`: a protected version stays branchable, diffable and readable
// (VOL@VERSION) past cloudfs.retention.time until it is unprotected. Protection is a chain entry (Protect) the volume's
// primary appends like a resize, so every replica applies it in chain order, a new primary knows it, and replay and the
// checkpoint (protection section) keep it over a restart. Compaction keeps the history from the oldest protected version
// on (LogStore.VersionRetention.cs: the history base never moves past it).
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>The volume whose chain holds <paramref name="version"/> (its own, not a branch's). Throws
    /// <see cref="UnknownVersionException"/>, or <see cref="VersionCompactedException"/> naming the oldest version of its
    /// volume still available.</summary>
    public Id160 VolumeOfVersion(Id160 version)
    {
        ThrowIfDisposed();
        return LocateInHistory(version).Volume;
    }

    /// <summary>
    /// Protects <paramref name="version"/> of <paramref name="volume"/>'s chain (or, with <paramref name="protect"/>
    /// false, ends its protection): a durable Protect entry. Protecting a protected version changes nothing. Throws
    /// <see cref="UnknownVersionException"/>, <see cref="InvalidRangeException"/> (a version of another volume),
    /// <see cref="VersionCompactedException"/> (no longer available: naming the oldest that is) and
    /// <see cref="CloudFsException"/> for unprotecting a version that is not protected.
    /// </summary>
    /// <param name="by">The chain's owner on this host (null when nobody claims it; refused while one does).</param>
    public async Task<VolumeInfo> ProtectVersionAsync(Id160 volume, Id160 version, bool protect, CancellationToken ct = default, ChainClaim? by = null)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        long lsn;
        // No compaction pass between the check that the version is available and its pin.
        await _compactionGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var (owner, at) = LocateInHistory(version);
            if (owner != volume) throw new InvalidRangeException($"version {version} is a version of volume {owner}, not of volume {volume}");
            lsn = at;
            lock (vol.IndexLock)
            {
                var isProtected = vol.Protected.TryGetValue(lsn, out var held) && held == version;
                if (protect && isProtected) return vol.ToInfo();
                if (!protect && !isProtected) throw new CloudFsException($"version {version} of volume {volume} is not protected");
            }
            if (protect)
            {
                ThrowIfCompacted(vol, lsn, version);
                // The base a protection needs exists from now on, and no pass moves it past lsn while the entry is written.
                lock (vol.IndexLock)
                {
                    vol.History ??= InitialHistory(vol);
                    vol.Pinned.Add(lsn);
                }
            }
        }
        finally { _compactionGate.Release(); }
        try
        {
            var payload = new byte[ProtectionPayload.Size];
            new ProtectionPayload(version, lsn, protect).Encode(payload);
            ct.ThrowIfCancellationRequested();
            var buf = EntryCodec.BuildMetadata(EntryKind.Protect, volume, 0, payload, Now);
            await Submit(vol, by, -1, buf, EntryKind.Protect, durable: true).Done.Task.ConfigureAwait(false);
        }
        finally
        {
            if (protect) lock (vol.IndexLock) vol.Pinned.Remove(lsn);
        }
        Checkpoints.NoteChange();
        _options.Log?.Invoke($"volume {volume}: version {version} (lsn {lsn}) {(protect ? "protected" : "no longer protected")}");
        return Info(vol);
    }

    /// <summary>The rule a protect entry's payload obeys wherever it comes from (null when it does).</summary>
    internal static string? CheckProtection(ReadOnlySpan<byte> entry, EntryHeader h) =>
        h.Kind == EntryKind.Protect && ProtectionPayload.Decode(entry.Slice(EntryHeader.OffBitmap, h.PayloadLength), h.Lsn) is null
            ? $"volume {h.Volume}: the protect entry at lsn {h.Lsn} has a malformed payload"
            : null;

    /// <summary>Under IndexLock, when a fork split rewinds the volume to <paramref name="lsn"/>: protections of versions
    /// after it, and a history base after it, go with the entries (the rewind has set the protected set to what the
    /// protect entries up to lsn left, so a protection the rewound suffix made of an earlier version is gone too, and
    /// one it took back is back: docs/FORMAT.md, "Protected versions").</summary>
    private static void ForgetHistoryAfter(VolumeState v, long lsn)
    {
        while (v.Protected.Count > 0 && v.Protected.Keys[^1] > lsn) v.Protected.RemoveAt(v.Protected.Count - 1);
        if (v.History is { } b && b.Lsn > lsn) v.History = null;
    }

    /// <summary>Under IndexLock, for a committed protect entry, before the head moves to it: the version joins or
    /// leaves the volume's protected set. A volume without a history base takes one now (a replica's first
    /// protection), so the next compaction pass keeps what the version needs.</summary>
    internal static void ApplyProtection(VolumeState v, ReadOnlySpan<byte> meta, EntryHeader h)
    {
        var p = ProtectionPayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength), h.Lsn)
                ?? throw new InvalidOperationException($"a verified protect entry of volume {h.Volume} has a malformed payload");
        if (!p.Protect)
        {
            if (v.Protected.TryGetValue(p.Lsn, out var held) && held == p.Version) v.Protected.Remove(p.Lsn);
            return;
        }
        v.Protected[p.Lsn] = p.Version;
        v.History ??= InitialHistory(v);
    }
}
