// The size of a volume at one of its versions: set by its creation or branch entry, then by each resize entry of its
// chain. A version is read (VOL@VERSION), diffed and branched at its own size, not at the volume's current one: after a
// shrink an older version still reads its data past the new end, after a grow it is still as small as it was. The
// head's size is the volume's; an older version's is the history base's size (HistoryBase.SizeBytes) carried through the
// headers after the base, the same walk that rebuilds the version's index (HistoricIndex).
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>
    /// The size in bytes of <paramref name="volume"/> as it was at <paramref name="version"/> (of its own chain or of a
    /// chain it was branched from): what the export VOL@VERSION serves. Throws as <see cref="ReadVersionAsync"/> does
    /// when the version cannot be read.
    /// </summary>
    public async ValueTask<long> VersionSizeAsync(Id160 volume, Id160 version, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var view = await ViewOf(Volume(volume), version).ConfigureAwait(false);
        Volatile.Write(ref view.LastUsedTicks, Environment.TickCount64);
        return view.SizeBytes;
    }

    /// <summary>The size after entry <paramref name="h"/> (its header and payload in <paramref name="meta"/>), given the
    /// size before it: a creation or branch entry's, a resize entry's new size, else unchanged.</summary>
    private static long SizeAfter(long before, EntryHeader h, ReadOnlySpan<byte> meta)
    {
        var payload = meta.Slice(EntryHeader.OffBitmap, h.PayloadLength);
        return h.Kind switch
        {
            EntryKind.Create or EntryKind.Branch => CreatePayload.Decode(payload, h.Kind == EntryKind.Branch)?.SizeBytes
                ?? throw new InvalidOperationException($"a verified {h.Kind} entry of volume {h.Volume} has a malformed payload"),
            EntryKind.Resize => ResizePayload.Decode(payload)?.NewSize
                ?? throw new InvalidOperationException($"a verified resize entry of volume {h.Volume} has a malformed payload"),
            _ => before,
        };
    }

    /// <summary>The size of <paramref name="vol"/> at <paramref name="lsn"/> (its <paramref name="version"/>): the
    /// head's is the volume's, an older one's is walked from the history base through the headers after it. Throws
    /// <see cref="VersionCompactedException"/> as <see cref="HistoricIndex"/> does.</summary>
    private long SizeAt(VolumeState vol, long lsn, Id160 version)
    {
        lock (vol.IndexLock) if (lsn == vol.Lsn) return vol.SizeBytes;
        var b = CheckHistoryHolds(vol, lsn, version);
        var size = SizeAtBase(vol, b);
        if (lsn == b.Lsn) return size;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        using var window = new HeaderWindow(_device, meta.Length);
        for (var l = b.Lsn + 1; l <= lsn; l++)
        {
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(l);
            size = SizeAfter(size, CheckedHeader(vol, window.At(block), block, l, meta), meta);
        }
        return size;
    }

    /// <summary>The size at <paramref name="lsn"/> for a diff from it, which needs only the entries after it: from the
    /// history base while it holds the version (<see cref="SizeAt"/>), else from those entries' headers up to the head
    /// (the size before the first resize after lsn, or the head's).</summary>
    private long SizeForDiff(VolumeState vol, long lsn, Id160 version)
    {
        try { return SizeAt(vol, lsn, version); }
        catch (VersionCompactedException) { return SizeBefore(vol, lsn); }
    }

    /// <summary>The size of <paramref name="vol"/> at <paramref name="lsn"/> from the headers after it up to the head:
    /// the size before the first resize entry after it (each carries the size before it), else the head's.</summary>
    private long SizeBefore(VolumeState vol, long lsn)
    {
        long head, size;
        lock (vol.IndexLock) (head, size) = (vol.Lsn, vol.SizeBytes);
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        using var window = new HeaderWindow(_device, meta.Length);
        for (var l = lsn + 1; l <= head; l++)
        {
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(l);
            var h = CheckedHeader(vol, window.At(block), block, l, meta);
            if (h.Kind == EntryKind.Resize)
                return ResizePayload.Decode(meta.AsSpan(EntryHeader.OffBitmap, h.PayloadLength))?.OldSize
                       ?? throw new InvalidOperationException($"a verified resize entry of volume {h.Volume} has a malformed payload");
        }
        return size;
    }

    /// <summary>The size at the history base. A base from a checkpoint written before sizes were kept has none: it is
    /// the size before the first resize entry after the base (each carries the size before it), else the head's; the
    /// base keeps it from then on.</summary>
    private long SizeAtBase(VolumeState vol, HistoryBase b)
    {
        if (b.SizeBytes != HistoryBase.UnknownSize) return b.SizeBytes;
        var size = SizeBefore(vol, b.Lsn);
        lock (vol.IndexLock)
            if (ReferenceEquals(vol.History, b)) vol.History = b with { SizeBytes = size };
        return size;
    }
}
