// Restoring an entry whose header went bad after a checkpoint covered it: recovery never reads it again, so a client read,
// compaction or a scrub finds it, and the checksums of its blocks were in that header, so no block repair can check a
// replica's bytes of them. The lsn table still names the entry's lsn (it knows where each lsn's header is), and the chain
// around it gives the version before that lsn and the version of it: a replica's whole entry of that lsn
// (ReadLostEntriesAsync, as for entries recovery lost) is taken only if it verifies, chains from the one to the other, and
// stores every block this host's indexes still read from the entry exactly where this host's entry stores it. The copy is
// then appended as it is; once durable, the lsn table names it (so this host streams that lsn again) and every index moves
// off the bad entry to the same blocks of the copy, which clears the damage; replay does the same.
using System.Buffers.Binary;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>
    /// Restores the live blocks of the entry of <paramref name="volume"/> whose header at <paramref name="entryBlock"/> went
    /// bad here, from <paramref name="copy"/>, a replica's copy of the whole entry of <paramref name="lsn"/>
    /// (<see cref="ReadLostEntriesAsync"/>). The copy is taken only if it is one entry that verifies (checksums, digest),
    /// is the data entry of that lsn of the volume, chains from this host's version before the lsn to its version of it
    /// (and, when this host chained it, its content makes that version with the volume's secret), and stores every block
    /// an index here still reads from the entry where this host's entry stores it; otherwise nothing is written and the
    /// outcome says why. The copy is appended as it is and takes the bad entry's place (<see cref="ApplyBadEntryCopy"/>).
    /// </summary>
    public async Task<RestoreOutcome> RestoreBadEntryAsync(Id160 volume, long entryBlock, long lsn, ReadOnlyMemory<byte> copy, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        await _restoring.WaitAsync(ct).ConfigureAwait(false);
        try { return await RestoreBadEntryAloneAsync(vol, entryBlock, lsn, copy, ct).ConfigureAwait(false); }
        finally { _restoring.Release(); }
    }

    private async Task<RestoreOutcome> RestoreBadEntryAloneAsync(VolumeState vol, long entryBlock, long lsn, ReadOnlyMemory<byte> copy, CancellationToken ct)
    {
        var volume = vol.BaseId;
        long named;
        lock (vol.IndexLock) named = lsn >= 1 && lsn <= vol.Lsns.Count ? vol.Lsns.BlockOf(lsn) : -1;
        if (named != entryBlock) return Refused($"lsn {lsn} of volume {volume} is not the entry at log block {entryBlock} here");
        var refusal = CheckBadEntryCopy(vol, lsn, copy.Span, out var h);
        if (refusal is not null) return Refused(refusal);
        var live = LiveBlocksOf(entryBlock, h);
        var dataStart = entryBlock + h.MetaSectors;
        var stored = StoredIndexes(copy.Span, h);
        foreach (var e in live)
            for (var i = 0; i < e.Count; i++)
                if (e.Start + i - h.FirstBlock is var at && (at < 0 || at >= h.BlockCount || stored[at] < 0 || dataStart + stored[at] != e.LogBlock + i))
                    return Refused($"the replica's entry lsn {lsn} does not store block {e.Start + i} at log block {e.LogBlock + i}, where this host's entry does");
        ct.ThrowIfCancellationRequested();
        // The whole entry is appended again as it is (sealed with this log's segment seq), made durable, and only then
        // do the lsn table and every index that reads the bad entry move to it (ApplyBadEntryCopy; replay does the same).
        var buf = EntryCodec.Allocate(h.StoredCount);
        copy.Span.CopyTo(buf.Span);
        var item = new EntryItem(buf, vol, EntryKind.Data, lsn, h.Version, 0, durable: true)
        {
            ReplacesBadEntry = entryBlock,
            AfterWrite = w => ApplyBadEntryCopy(vol, w.Buffer.Span, entryBlock, w.DeviceOffset / BlockSize),
        };
        _appender.Enqueue(item);
        await item.Done.Task.ConfigureAwait(false);
        long blocks = live.Sum(e => (long)e.Count);
        _options.Log?.Invoke($"volume {volume}: entry lsn {lsn}, whose header at log block {entryBlock} went bad, restored from a replica's copy that fits the chain ({blocks} block(s) read from it)");
        return new RestoreOutcome(1, blocks, 0, null);

        RestoreOutcome Refused(string why) => new(0, 0, 1, why);
    }

    /// <summary>
    /// Writer thread, before a replica's copy of an entry whose header went bad here is placed: null while the lsn table
    /// still names the bad entry for its lsn in the volume held here (a resync or a fork split may have replaced it).
    /// </summary>
    private Exception? AdmitBadEntryCopy(EntryItem e, VolumeState v)
    {
        if (!_volumes.TryGetValue(v.BaseId, out var held) || held != v)
            return new EntryRejectedException($"volume {v.BaseId} was replaced here before its entry lsn {e.Lsn} was restored", e.Lsn);
        lock (v.IndexLock)
            return e.Lsn <= v.Lsns.Count && v.Lsns.BlockOf(e.Lsn) == e.ReplacesBadEntry ? null
                : new EntryRejectedException($"volume {v.BaseId}: lsn {e.Lsn} is no longer the entry at log block {e.ReplacesBadEntry} here", e.Lsn);
    }

    /// <summary>
    /// Applies a copy of the entry of its lsn written at <paramref name="newEntry"/> in place of the one at
    /// <paramref name="oldEntry"/> (live, once durable; or replayed): the lsn table names the copy (streams, feeds and
    /// replicas' restorations read it from here), and every index that still reads a block from the old entry reads it
    /// from the same place in the copy, which clears that damage. Nothing when the lsn table names another entry.
    /// </summary>
    private void ApplyBadEntryCopy(VolumeState v, ReadOnlySpan<byte> meta, long oldEntry, long newEntry)
    {
        if (!EntryHeader.TryParse(meta, out var h, out var err)) throw new InvalidOperationException($"a verified entry failed to parse: {err}");
        lock (v.IndexLock)
        {
            if (h.Lsn < 1 || h.Lsn > v.Lsns.Count || v.Lsns.BlockOf(h.Lsn) != oldEntry) return;
            v.Lsns.Move(h.Lsn, newEntry);
        }
        var shift = newEntry - oldEntry;
        foreach (var (start, count, logBlock) in EntryRuns(meta, h, newEntry))
        {
            if (logBlock == Extent.ZeroLogBlock) continue;
            foreach (var (_, index, owner) in AllIndexes())
                lock (owner.IndexLock) index.Relocate(start, (int)count, logBlock - shift, logBlock, newEntry);
            Damage.ClearRepaired(start, (int)count, logBlock);
        }
        Checkpoints.NoteChange();
    }

    /// <summary>
    /// Replay: a data entry at an lsn the volume holds, not lost, with the version the lsn table keeps for it, written at
    /// another place than the table names, is a copy restored in place of that entry (true: applied), else not one.
    /// </summary>
    private bool ReplayBadEntryCopy(VolumeState v, ReadOnlySpan<byte> span, EntryHeader h, long block)
    {
        if (h.Kind != EntryKind.Data || h.Lsn < 1 || h.Lsn > v.Lsn) return false;
        long old;
        lock (v.IndexLock)
        {
            if (h.Lsn > v.Lsns.Count || v.Lost.Exists(l => l.Holds(h.Lsn)) || v.Lsns.PrefixOf(h.Lsn) != VersionChain.Prefix(h.Version)) return false;
            old = v.Lsns.BlockOf(h.Lsn);
        }
        if (old != block) ApplyBadEntryCopy(v, span, old, block);
        return true;
    }

    /// <summary>
    /// The lsn of the entry of <paramref name="volume"/>'s own chain whose header is at <paramref name="entryBlock"/> here,
    /// or 0 when its lsn table names none there (a relocated or resynced copy, a restored lost entry, or an entry of the
    /// volume a branch was made from: their lsn is only in their own header).
    /// </summary>
    internal long LsnOfEntry(VolumeState vol, long entryBlock)
    {
        lock (vol.IndexLock)
        {
            var lsn = vol.Lsns.LsnAt(entryBlock);
            return lsn >= 1 && !vol.Lost.Exists(l => l.Holds(lsn)) ? lsn : 0;
        }
    }

    /// <summary>Null when <paramref name="copy"/> is exactly the data entry of <paramref name="lsn"/> as this host's chain
    /// has it (<paramref name="h"/> its header); otherwise why it is refused.</summary>
    private string? CheckBadEntryCopy(VolumeState vol, long lsn, ReadOnlySpan<byte> copy, out EntryHeader h)
    {
        if (!EntryHeader.TryParse(copy, out h, out var parseError)) return $"the entry for lsn {lsn}: {parseError}";
        if (h.TotalBytes != copy.Length) return $"the copy holds {copy.Length} bytes, not one entry of {h.TotalBytes}";
        if (EntryCodec.Verify(copy, out _) is { } bad) return $"the entry for lsn {lsn}: {bad}";
        if (h.Volume != vol.BaseId || h.Lsn != lsn) return $"the entry for lsn {lsn} is lsn {h.Lsn} of volume {h.Volume}";
        if (h.Kind != EntryKind.Data) return $"lsn {lsn} is a {h.Kind.ToString().ToLowerInvariant()} entry, not the data entry whose blocks this host reads";
        if (h.StoredCount > MaxBlocksPerEntry) return $"the entry at lsn {lsn} stores {h.StoredCount} blocks, more than an entry here holds";
        if (ChainMismatch(vol, lsn - 1, VersionChain.PublicOf(h.Parent), "chains onto") is { } parent) return $"the entry for lsn {lsn} {parent}";
        if (ChainMismatch(vol, lsn, h.Version, "has") is { } version) return $"the entry for lsn {lsn} {version}";
        if (SecretOver(vol, lsn) is { } secret && VersionChain.PublicOf(VersionChain.NextId(secret, h.Parent, h.Digest)) != h.Version)
            return $"the entry for lsn {lsn} is not what this volume's secret chained: its content does not make its version";
        return null;
    }

    /// <summary>
    /// Null when <paramref name="version"/> is this host's version at <paramref name="lsn"/>: compared in full where the
    /// chain has it at hand (the head's, the parent the next entry names, the entry's own header), else with the prefix
    /// the lsn table keeps. Otherwise the mismatch (after "the entry for lsn L ").
    /// </summary>
    private string? ChainMismatch(VolumeState vol, long lsn, Id160 version, string verb)
    {
        if (FullVersionAt(vol, lsn) is { } full)
            return full == version ? null : $"{verb} version {version}, but this host's version at lsn {lsn} is {full}";
        ulong prefix;
        lock (vol.IndexLock) prefix = lsn >= 1 && lsn <= vol.Lsns.Count ? vol.Lsns.PrefixOf(lsn) : 0;
        if (prefix == 0) return $"{verb} version {version}, and this host does not know its version at lsn {lsn}";
        return VersionChain.Prefix(version) == prefix ? null : $"{verb} version {version}, not this host's version at lsn {lsn} (prefix {prefix:x16})";
    }

    /// <summary>This host's version of <paramref name="vol"/> at <paramref name="lsn"/> in full, where it is at hand: the
    /// head (and its parent), the base id for lsn 1, the parent named by the header of lsn + 1, or the header of lsn itself.</summary>
    private Id160? FullVersionAt(VolumeState vol, long lsn)
    {
        long head;
        Id160 headVersion, headParent;
        lock (vol.IndexLock) { head = vol.Lsn; headVersion = vol.Version; headParent = vol.HeadParent; }
        if (lsn == head) return headVersion;
        if (lsn == head - 1) return VersionChain.PublicOf(headParent);
        if (lsn == 1) return vol.BaseId;
        if (lsn < 1 || lsn > head) return null;
        if (OwnHeader(vol, lsn + 1) is { } next) return VersionChain.PublicOf(next.Parent);
        if (OwnHeader(vol, lsn) is { } own) return own.Version;
        return null;
    }

    /// <summary>The header of <paramref name="lsn"/> of <paramref name="vol"/> where the lsn table names it, when it reads and
    /// is that entry (null otherwise: lost, compacted and reused, or bad too).</summary>
    private EntryHeader? OwnHeader(VolumeState vol, long lsn)
    {
        long block;
        ulong prefix;
        lock (vol.IndexLock)
        {
            if (lsn < vol.OldestStreamableLsn || lsn > vol.Lsns.Count || vol.Lost.Exists(l => l.Holds(lsn))) return null;
            block = vol.Lsns.BlockOf(lsn);
            prefix = vol.Lsns.PrefixOf(lsn);
        }
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        try
        {
            var h = ReadEntryMeta(block, meta, vol.BaseId);
            return h.Volume == vol.BaseId && h.Lsn == lsn && VersionChain.Prefix(h.Version) == prefix ? h : null;
        }
        catch (Exception e) when (e is CloudFsException or IOException) { return null; }
    }

    /// <summary>
    /// What any index here (every volume's, branch parents', staged resyncs') still reads from the entry at
    /// <paramref name="entryBlock"/>, within the range <paramref name="h"/> covers: logical runs with their log blocks,
    /// in logical order, each logical block once.
    /// </summary>
    private List<Extent> LiveBlocksOf(long entryBlock, EntryHeader h)
    {
        var found = new List<Extent>();
        var hits = new List<Extent>();
        foreach (var (_, index, owner) in AllIndexes())
        {
            hits.Clear();
            lock (owner.IndexLock) index.Lookup(h.FirstBlock, h.BlockCount, hits);
            foreach (var e in hits)
                if (!e.IsZero && e.EntryBlock == entryBlock) found.Add(e);
        }
        found.Sort((a, b) => a.Start.CompareTo(b.Start));
        var merged = new List<Extent>();
        foreach (var e in found)
        {
            // One logical block of an entry has one log block, so runs of the same entry that meet or overlap join.
            if (merged.Count > 0 && merged[^1] is var last && e.Start <= last.End && e.LogBlock - e.Start == last.LogBlock - last.Start)
            {
                if (e.End > last.End) merged[^1] = last with { Count = (int)(e.End - last.Start) };
            }
            else merged.Add(e);
        }
        return merged;
    }

    /// <summary>For each block the entry covers, its index among the entry's stored blocks (-1 where it stores none).</summary>
    private static int[] StoredIndexes(ReadOnlySpan<byte> meta, EntryHeader h)
    {
        var result = new int[h.BlockCount];
        foreach (var run in new StoredRuns(meta, h.BlockCount))
            for (var i = 0; i < run.Count; i++) result[run.First + i] = run.Stored ? run.StoredIndex + i : -1;
        return result;
    }
}
