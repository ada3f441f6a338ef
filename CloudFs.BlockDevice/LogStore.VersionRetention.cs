// Version retention (cloudfs.retention.time): the versions of a volume written within the retention time stay
// branchable, readable (VOL@VERSION) and diffable after compaction. Each volume has a history base: the index as of an
// lsn B, frozen (none for B = 0: the empty index, or a branch's parent). Compaction keeps what that index reads and
// every entry after B: their headers rebuild any later version's index from the base (HistoricIndex), and their data is
// what those versions read. Each pass first moves the base forward to the newest entry written before the retention
// time; what only older versions read is then reclaimed. While free space is short the bases move to the heads: the
// log never fills for the sake of history (the node logs it).
using System.Collections.Concurrent;
using CloudFs.BlockDevice.Compaction;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>A volume's oldest available version: its lsn, its id, and its index then, frozen (null for lsn 0: the
    /// whole history; the version is then the volume's id, its first).</summary>
    private sealed record HistoryBase(long Lsn, Id160 Version, ExtentIndex? Index);

    private readonly ConcurrentDictionary<Id160, HistoryBase> _historyBases = new();

    /// <summary>The volume's history base. A volume first seen with nothing compacted starts at lsn 0 (its whole
    /// history); one whose older headers are gone (opened after compaction took them) starts at its head.</summary>
    private HistoryBase BaseOf(VolumeState vol)
    {
        if (_options.RetentionTime <= TimeSpan.Zero) return new HistoryBase(0, vol.BaseId, null); // no retention: as before
        return _historyBases.GetOrAdd(vol.BaseId, _ =>
        {
            lock (vol.IndexLock)
                return vol.OldestStreamableLsn <= 1 ? new HistoryBase(0, vol.BaseId, null) : new HistoryBase(vol.Lsn, vol.Version, vol.Index.Snapshot());
        });
    }

    /// <summary>Whether a branch of <paramref name="version"/> can be made here: a version of a volume held here, its
    /// head or within the history its base keeps.</summary>
    public bool CanBranchFrom(Id160 version)
    {
        ThrowIfDisposed();
        try
        {
            var (id, lsn) = LocateInHistory(version);
            var vol = Volume(id);
            lock (vol.IndexLock) if (lsn == vol.Lsn) return true;
            CheckHistoryHolds(vol, lsn, version);
            return true;
        }
        catch (Exception e) when (e is UnknownVersionException or VersionCompactedException or VolumeNotFoundException) { return false; }
    }

    /// <summary>The history base from which <paramref name="vol"/>'s index as of <paramref name="lsn"/> is rebuilt; throws
    /// <see cref="VersionCompactedException"/> naming the oldest version still available when lsn is older.</summary>
    private HistoryBase CheckHistoryHolds(VolumeState vol, long lsn, Id160 version)
    {
        var b = BaseOf(vol);
        long oldest;
        lock (vol.IndexLock) oldest = vol.OldestStreamableLsn;
        if (lsn < b.Lsn || oldest > Math.Max(b.Lsn, 1))
        {
            // The oldest version that can still be had: the base while its history is whole, else only the head.
            Id160 available;
            lock (vol.IndexLock) available = vol.Version;
            if (oldest <= Math.Max(b.Lsn, 1)) available = b.Version;
            throw new VersionCompactedException(version, available);
        }
        return b;
    }

    /// <summary>
    /// The index of <paramref name="vol"/> as of <paramref name="lsn"/> (its <paramref name="version"/>), writable and
    /// not shared: the history base's, with the headers of the entries after it up to lsn applied (no data is read).
    /// Throws <see cref="VersionCompactedException"/> naming the oldest version still available when lsn is older.
    /// </summary>
    private ExtentIndex HistoricIndex(VolumeState vol, long lsn, Id160 version)
    {
        var b = CheckHistoryHolds(vol, lsn, version);
        ExtentIndex index;
        if (b.Index is { } frozen) index = frozen.Thaw();
        else lock (vol.IndexLock) index = vol.Index.Parent is { } parent ? parent.Branch() : new ExtentIndex();
        if (lsn == b.Lsn) return index;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        using var window = new HeaderWindow(_device, meta.Length);
        for (var l = b.Lsn + 1; l <= lsn; l++)
        {
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(l);
            var h = CheckedHeader(vol, window.At(block), block, l, meta);
            IndexEntry(index, meta, h, block);
        }
        return index;
    }

    /// <summary>
    /// Before a compaction pass scans: each volume's base moves to the newest entry written at least
    /// <see cref="LogStoreOptions.RetentionTime"/> ago (to its head while <paramref name="pressed"/>: free space is
    /// short). Runs under the compaction gate.
    /// </summary>
    private void AdvanceHistoryBases(bool pressed)
    {
        if (_options.RetentionTime <= TimeSpan.Zero) return;
        var cutoff = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)_options.RetentionTime.TotalMilliseconds;
        foreach (var vol in _volumes.Values)
        {
            if (!vol.Committed) continue;
            try { AdvanceHistoryBase(vol, pressed ? long.MaxValue : cutoff); }
            catch (CloudFsException e) { _options.Log?.Invoke($"volume {vol.BaseId}: its history base stays at lsn {BaseOf(vol).Lsn}: {e.Message}"); }
        }
        foreach (var id in _historyBases.Keys)
            if (!_volumes.ContainsKey(id)) _historyBases.TryRemove(id, out _);
    }

    private void AdvanceHistoryBase(VolumeState vol, long cutoffUnixMs)
    {
        var b = BaseOf(vol);
        long head;
        lock (vol.IndexLock) head = vol.Lsn;
        if (head <= b.Lsn) return;
        // The newest lsn written before the cutoff: entries are appended in time order, so a binary search over
        // (base, head] reads a few headers.
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        long lo = b.Lsn, hi = head;
        while (lo < hi)
        {
            var mid = lo + (hi - lo + 1) / 2;
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(mid);
            if (HeaderAt(vol, block, mid, meta).TimestampUnixMs <= cutoffUnixMs) lo = mid; else hi = mid - 1;
        }
        if (lo <= b.Lsn) return;
        HistoryBase? next = null;
        lock (vol.IndexLock)
            if (lo == vol.Lsn) next = new HistoryBase(lo, vol.Version, vol.Index.Snapshot());
        next ??= new HistoryBase(lo, VersionAt(vol.BaseId, lo), HistoricIndex(vol, lo, Id160.Zero).Snapshot());
        _historyBases[vol.BaseId] = next;
    }

    /// <summary>The history bases' indexes, for compaction: what the oldest available versions read is live.</summary>
    private IEnumerable<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> HistoryIndexes()
    {
        foreach (var (id, b) in _historyBases)
            if (b.Index is not null && _volumes.TryGetValue(id, out var owner))
                for (var x = b.Index; x is not null; x = x.Parent)
                    yield return (id, x, owner);
    }

    /// <summary>Segments holding entries after a history base: the headers later versions are rebuilt from.</summary>
    private HashSet<int> HistorySegments()
    {
        var keep = new HashSet<int>();
        if (_options.RetentionTime <= TimeSpan.Zero) return keep;
        foreach (var vol in _volumes.Values)
        {
            if (!vol.Committed) continue;
            var b = BaseOf(vol);
            lock (vol.IndexLock)
                for (var l = Math.Max(Math.Max(b.Lsn, 1), vol.OldestStreamableLsn); l <= vol.Lsns.Count; l++)
                    keep.Add(Compactor.SegmentOf(_layout, vol.Lsns.BlockOf(l)));
        }
        keep.Remove(-1);
        return keep;
    }
}
