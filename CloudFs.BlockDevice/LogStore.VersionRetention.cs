// Version retention (cloudfs.retention.time): the versions of a volume written within the retention time stay
// branchable, readable (VOL@VERSION) and diffable after compaction. Each volume has a history base: the index as of an
// lsn B, frozen (none for B = 0: the empty index, or a branch's parent). Compaction keeps what that index reads and
// every entry after B: their headers rebuild any later version's index from the base (HistoricIndex), and their data is
// what those versions read. Each pass first moves the base forward to the newest entry written before the retention
// time, but never past a protected version (`cloudfs protect`: the oldest one is kept with everything after it, which
// diffs from it need); what only older versions read is then reclaimed. While free space is short the bases move to
// the heads, or to the oldest protected version: the log never fills for the sake of retention alone (the node logs it).
// The base is checkpointed with its volume (the history section), so a restart keeps it, with the chain's state at it:
// a full resync is sent as of the base (AtHistoryBaseAsync), so a replica installed that way keeps the same history.
using CloudFs.BlockDevice.Compaction;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>The volume's history base. A volume first seen with nothing compacted starts at lsn 0 (its whole
    /// history); one whose older headers are gone (compaction took them before retention or a protection needed them)
    /// starts at its head. Without retention and protections a volume keeps none (as before).</summary>
    private HistoryBase BaseOf(VolumeState vol)
    {
        lock (vol.IndexLock)
        {
            if (vol.History is { } b) return b;
            if (_options.RetentionTime <= TimeSpan.Zero && vol.OldestProtectedLsn == long.MaxValue)
                return new HistoryBase(0, vol.BaseId, null, 0); // no retention, nothing protected: as before
            return vol.History = InitialHistory(vol);
        }
    }

    /// <summary>At open, with a retention time: a volume the checkpoint kept no base for starts at what it holds now
    /// (its whole history, or its head), not at whatever head it has when a pass first asks.</summary>
    private void StartHistoryBases()
    {
        if (_options.RetentionTime <= TimeSpan.Zero) return;
        foreach (var v in _volumes.Values)
            if (v.Committed) BaseOf(v);
    }

    /// <summary>Under IndexLock: the base a volume starts with (see <see cref="BaseOf"/>).</summary>
    private static HistoryBase InitialHistory(VolumeState vol) =>
        vol.OldestStreamableLsn <= 1 ? new HistoryBase(0, vol.BaseId, null, 0) : HeadHistory(vol);

    /// <summary>Under IndexLock: a base at the volume's committed head.</summary>
    private static HistoryBase HeadHistory(VolumeState vol) =>
        new(vol.Lsn, vol.Version, vol.Index.Snapshot(), vol.SizeBytes) { Chain = BaseChainState.AtHead(vol) };

    /// <summary>Throws <see cref="VersionCompactedException"/> (naming the oldest version still available) unless the
    /// version of <paramref name="vol"/> at <paramref name="lsn"/> can still be had: the head, or one the history base
    /// keeps (<see cref="CheckHistoryHolds"/>).</summary>
    private void ThrowIfCompacted(VolumeState vol, long lsn, Id160 version)
    {
        lock (vol.IndexLock) if (lsn == vol.Lsn) return;
        CheckHistoryHolds(vol, lsn, version);
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
        // Every entry after the base must be held (a replica a full resync installed at the base holds none before it).
        if (lsn < b.Lsn || oldest > b.Lsn + 1)
        {
            // The oldest version that can still be had: the base while its history is whole, else only the head.
            Id160 available;
            lock (vol.IndexLock) available = vol.Version;
            if (oldest <= b.Lsn + 1) available = b.Version;
            throw new VersionCompactedException(version, available);
        }
        return b;
    }

    /// <summary>
    /// The index of <paramref name="vol"/> as of <paramref name="lsn"/> (its <paramref name="version"/>), writable and
    /// not shared, and its size then: the history base's, with the headers of the entries after it up to lsn applied
    /// (no data is read). Throws <see cref="VersionCompactedException"/> naming the oldest version still available when
    /// lsn is older.
    /// </summary>
    private (ExtentIndex Index, long SizeBytes) HistoricIndex(VolumeState vol, long lsn, Id160 version)
    {
        var (index, size, _) = HistoricState(vol, lsn, version, chain: false);
        return (index, size);
    }

    /// <summary>
    /// <see cref="HistoricIndex"/>; with <paramref name="chain"/> also the chain's state at lsn (≥ 1), folded over the
    /// same headers from the base's (null when the base's is unknown: a checkpoint written before it was kept).
    /// </summary>
    private (ExtentIndex Index, long SizeBytes, BaseChainState? Chain) HistoricState(VolumeState vol, long lsn, Id160 version, bool chain)
    {
        var b = CheckHistoryHolds(vol, lsn, version);
        var size = SizeAtBase(vol, b);
        ExtentIndex index;
        if (b.Index is { } frozen) index = frozen.Thaw();
        else lock (vol.IndexLock) index = vol.Index.Parent is { } parent ? parent.Branch() : new ExtentIndex();
        // Lsn 0 has no state: the creation entry begins it.
        chain &= b.Lsn == 0 || b.Chain is not null;
        var view = chain ? b.Chain?.ToView(size) : null;
        var state = chain ? b.Chain : null;
        if (lsn == b.Lsn) return (index, size, state);
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        using var window = new HeaderWindow(_device, meta.Length);
        for (var l = b.Lsn + 1; l <= lsn; l++)
        {
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(l);
            var h = CheckedHeader(vol, window.At(block), block, l, meta);
            IndexEntry(index, meta, h, block);
            size = SizeAfter(size, h, meta);
            if (!chain) continue;
            view = VolumeView.After(view, h, meta)
                   ?? throw new DataCorruptionException(vol.BaseId, 0, 0, $"the {h.Kind} entry at log block {block} (lsn {l}) has a malformed payload");
            state = BaseChainState.After(view, h);
        }
        return (index, size, state);
    }

    /// <summary>
    /// Before a compaction pass scans: each volume's base moves to the newest entry written at least
    /// <see cref="LogStoreOptions.RetentionTime"/> ago (to its head while <paramref name="pressed"/>: free space is
    /// short). Runs under the compaction gate.
    /// </summary>
    /// <returns>When a later pass could release more by time alone (Unix ms; 0: at once, a base moved; MaxValue: only a
    /// new entry can), so an idle log's scheduled passes need not look at every volume again before then.</returns>
    private long AdvanceHistoryBases(bool pressed)
    {
        var retained = _options.RetentionTime > TimeSpan.Zero;
        var cutoff = retained && !pressed ? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)_options.RetentionTime.TotalMilliseconds : long.MaxValue;
        var due = long.MaxValue;
        foreach (var vol in _volumes.Values)
        {
            if (!vol.Committed) continue;
            if (!retained)
                lock (vol.IndexLock)
                {
                    // Without retention only protections keep a base: the last one unprotected, history goes as before.
                    if (vol.History is null) continue;
                    // A base a full resync installed stays until the protections of the sender's head have applied.
                    if (vol.OldestProtectedLsn == long.MaxValue && vol.History.HeldUntilLsn <= vol.Lsn) { vol.History = null; continue; }
                }
            try
            {
                var youngest = AdvanceHistoryBase(vol, cutoff);
                due = Math.Min(due, youngest == 0 ? 0 : !retained ? long.MaxValue : SaturatingAdd(youngest, (long)_options.RetentionTime.TotalMilliseconds));
            }
            catch (CloudFsException e)
            {
                _options.Log?.Invoke($"volume {vol.BaseId}: its history base stays at lsn {BaseOf(vol).Lsn}: {e.Message}");
                due = 0;
            }
        }
        return due;

        static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
    }

    /// <summary>Moves one volume's history base; returns 0 when it moved, else the time (Unix ms) of the first entry after
    /// the base (MaxValue: none, or only protections hold it).</summary>
    private long AdvanceHistoryBase(VolumeState vol, long cutoffUnixMs)
    {
        var b = BaseOf(vol);
        long head;
        lock (vol.IndexLock)
        {
            // A base a full resync installed stays until the volume holds the sender's head: only a new entry moves it.
            if (b.HeldUntilLsn > vol.Lsn) return long.MaxValue;
            // Never past a protected version: the base stays at the oldest one.
            head = Math.Min(vol.Lsn, vol.OldestProtectedLsn);
        }
        if (head <= b.Lsn) return long.MaxValue;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        // Entries are appended in time order: while the first entry after the base is younger than the cutoff, so is
        // every later one. Its time is read once per base, not once per pass (a pass looks at every volume).
        var first = b.Lsn + 1;
        if (vol.AfterHistory.Lsn != first)
        {
            long firstBlock;
            lock (vol.IndexLock) firstBlock = vol.Lsns.BlockOf(first);
            vol.AfterHistory = (first, HeaderAt(vol, firstBlock, first, meta).TimestampUnixMs);
        }
        if (vol.AfterHistory.TimestampUnixMs > cutoffUnixMs) return vol.AfterHistory.TimestampUnixMs;
        // The newest lsn written before the cutoff: a binary search over (base, head] reads a few headers.
        long lo = b.Lsn, hi = head;
        while (lo < hi)
        {
            var mid = lo + (hi - lo + 1) / 2;
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(mid);
            if (HeaderAt(vol, block, mid, meta).TimestampUnixMs <= cutoffUnixMs) lo = mid; else hi = mid - 1;
        }
        if (lo <= b.Lsn) return vol.AfterHistory.TimestampUnixMs;
        HistoryBase? next = null;
        lock (vol.IndexLock)
            if (lo == vol.Lsn) next = HeadHistory(vol);
        if (next is null)
        {
            var (index, size, chain) = HistoricState(vol, lo, Id160.Zero, chain: true);
            next = new HistoryBase(lo, VersionAt(vol.BaseId, lo), index.Snapshot(), size) { Chain = chain };
        }
        lock (vol.IndexLock)
            // A protect applied meanwhile (this runs under the compaction gate, a protect's entry does not) wins.
            if (lo <= vol.OldestProtectedLsn) vol.History = next;
        Checkpoints.NoteChange();
        return 0;
    }

    /// <summary>The history bases' indexes, for compaction: what the oldest available versions read is live.</summary>
    private IEnumerable<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> HistoryIndexes()
    {
        foreach (var owner in _volumes.Values)
        {
            HistoryBase? b;
            lock (owner.IndexLock) b = owner.History;
            if (b?.Index is not null)
                for (var x = b.Index; x is not null; x = x.Parent)
                    yield return (owner.BaseId, x, owner);
        }
    }

    /// <summary>Segments holding entries after a history base: the headers later versions are rebuilt from; and the
    /// entries after the history base a full resync is being sent as of, which its receiver pulls next (not while
    /// <paramref name="pressed"/>: free space is short, and the log never fills for history alone).</summary>
    private HashSet<int> HistorySegments(bool pressed)
    {
        var keep = new HashSet<int>();
        foreach (var vol in _volumes.Values)
        {
            if (!vol.Committed) continue;
            lock (vol.IndexLock)
                if (_options.RetentionTime <= TimeSpan.Zero && vol.History is null) continue;
            var b = BaseOf(vol);
            lock (vol.IndexLock)
                for (var l = Math.Max(Math.Max(b.Lsn, 1), vol.OldestStreamableLsn); l <= vol.Lsns.Count; l++)
                    keep.Add(Compactor.SegmentOf(_layout, vol.Lsns.BlockOf(l)));
        }
        foreach (var (vol, lsn) in pressed ? [] : Resync.SendingAsOfHistory())
            lock (vol.IndexLock)
                for (var l = Math.Max(lsn + 1, vol.OldestStreamableLsn); l <= vol.Lsns.Count; l++)
                    keep.Add(Compactor.SegmentOf(_layout, vol.Lsns.BlockOf(l)));
        keep.Remove(-1);
        return keep;
    }

    /// <summary>
    /// Where a full resync of <paramref name="vol"/> is sent from while the volume keeps history (docs/FORMAT.md, "Full
    /// resync"): its history base (lsn 1 for a base at lsn 0, the whole history) with its index, frozen, its size and
    /// the chain's state there, so the new replica keeps the versions from there on as this host does. Null when it
    /// goes as of the head instead: no base, a base at the head, one whose chain state a checkpoint written before it
    /// was kept did not give, or entries after it this host no longer holds. <paramref name="take"/> gets the point and
    /// the head (both under the compaction gate: no pass moves the base or relocates the index before the transfer is
    /// registered with compaction).
    /// </summary>
    internal async Task<T?> AtHistoryBaseAsync<T>(VolumeState vol, Func<HistoryBase, long, T> take) where T : class
    {
        // A volume that keeps no history is sent as before, without waiting for a compaction pass to end (and one that
        // pass left without history, its last protection gone, too).
        if (KeepsNoHistory()) return null;
        await _compactionGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (KeepsNoHistory()) return null;
            // With retention a volume no pass has looked at yet takes its base now, as a pass would.
            var b = BaseOf(vol);
            long head, oldest;
            lock (vol.IndexLock) (head, oldest) = (vol.Lsn, vol.OldestStreamableLsn);
            var at = Math.Max(b.Lsn, 1);
            if (at >= head || oldest > b.Lsn + 1) return null;
            HistoryBase point;
            try
            {
                if (at == b.Lsn)
                {
                    if (b.Index is null) return null;
                    var size = SizeAtBase(vol, b);
                    if (ChainAtBase(vol, b) is not { } chain)
                    {
                        _options.Log?.Invoke($"volume {vol.BaseId}: a full resync goes as of the head: the chain's state at the history base (lsn {b.Lsn}, from a checkpoint of an older build) cannot be derived (the view or the trash state changed after it)");
                        return null;
                    }
                    point = b with { Index = b.Index.Snapshot(), SizeBytes = size, Chain = chain };
                }
                else
                {
                    var (index, size, chain) = HistoricState(vol, at, Id160.Zero, chain: true);
                    if (chain is null) return null;
                    point = new HistoryBase(at, VersionAt(vol.BaseId, at), index.Snapshot(), size) { Chain = chain };
                }
            }
            catch (CloudFsException e)
            {
                _options.Log?.Invoke($"volume {vol.BaseId}: a full resync goes as of the head, not the history base at lsn {b.Lsn}: {e.Message}");
                return null;
            }
            return take(point, head);
        }
        finally { _compactionGate.Release(); }

        bool KeepsNoHistory()
        {
            lock (vol.IndexLock) return vol.History is null && _options.RetentionTime <= TimeSpan.Zero;
        }
    }

    /// <summary>
    /// The chain's state at history base <paramref name="b"/> (lsn ≥ 1). A base from a checkpoint written before it was
    /// kept (history kinds 2 and 3) has none: it is derived once, when first asked, as the head's view, replica set and
    /// trash state when no entry after the base changed them (view change, trash, restore: their headers are read),
    /// with the parent and digest from the base entry's own header (kept with the entries after the base); the base
    /// keeps it from then on. Null when it cannot be derived.
    /// </summary>
    private BaseChainState? ChainAtBase(VolumeState vol, HistoryBase b)
    {
        if (b.Chain is { } known) return known;
        long head, oldest;
        BaseChainState atHead;
        lock (vol.IndexLock) (head, oldest, atHead) = (vol.Lsn, vol.OldestStreamableLsn, BaseChainState.AtHead(vol));
        if (b.Lsn < Math.Max(oldest, 1)) return null;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        using var window = new HeaderWindow(_device, meta.Length);
        EntryHeader At(long l)
        {
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(l);
            return CheckedHeader(vol, window.At(block), block, l, meta);
        }
        var entry = At(b.Lsn);
        // A resync commit stands for an lsn whose entry was never here: its parent field is a transfer id.
        if (entry.Kind == EntryKind.ResyncCommit || entry.Version != b.Version) return null;
        for (var l = b.Lsn + 1; l <= head; l++)
            if (At(l).Kind is EntryKind.ViewChange or EntryKind.Trash or EntryKind.Restore) return null;
        var derived = atHead with { HeadParent = entry.Parent, HeadDigest = entry.Digest };
        lock (vol.IndexLock)
            if (vol.History is { Chain: null } now && now.Lsn == b.Lsn && now.Version == b.Version) vol.History = now with { Chain = derived };
        return derived;
    }
}
