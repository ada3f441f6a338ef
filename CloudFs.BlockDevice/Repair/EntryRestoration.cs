// Restoring whole entries from a replica's copy of them, one restoration at a time: the entries recovery had to skip, and
// an entry whose header went bad after a checkpoint covered it. A copy is taken only if it fits this host's chain.
//
// Restoring entries that recovery had to skip (a header beyond correction, docs/FORMAT.md "Recovery") from a replica's
// copy of them: the replica sends the whole entries (ReadLostEntriesAsync); this host takes them only if they chain from
// the version before the gap to the version the entry after it names, and appends them again, each applied only where
// no entry after the gap has written since (the ranges still damaged for the lost entries), which clears that damage
// (RestoreLostEntriesAsync); a lost trash, restore or resize entry sets the volume's state only when no entry after the
// gap has set it since (their headers tell). Replay does the same with the appended entries.
//
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

namespace CloudFs.BlockDevice.Repair;

/// <summary>
/// Restoring lost entries and entries whose header went bad from a replica's copy (<see cref="LogStore.Restoration"/>).
/// Its own state is the one restoration at a time; the lost runs live in each <see cref="VolumeState"/> (IndexLock). The
/// writer's admission (<see cref="AdmitRestoration"/>, <see cref="AdmitBadEntryCopy"/>) and recovery's replay
/// (<see cref="ReplayRestoration"/>, <see cref="ReplayBadEntryCopy"/>) of the entries it appends call into it.
/// </summary>
public sealed class EntryRestoration
{
    /// <summary>Most bytes of entries one answer of <see cref="ReadLostEntriesAsync"/> carries (one message between hosts,
    /// under Akka's frame size); one entry is always sent, whatever its size (at most 1 MiB + 9 KiB).</summary>
    public const int MaxLostEntryBytes = 3 << 20;

    /// <summary>Most bytes of entries one run restored from a replica may take (they are held in memory until all of them
    /// are checked); a longer run stays damaged.</summary>
    public const int MaxLostRunBytes = 256 << 20;

    private const int BlockSize = LogStore.BlockSize;

    private readonly LogStore _store;
    private readonly LogStoreOptions _options;

    // One restoration at a time, each until its entries are applied: a run is restored once, so every restored entry
    // replay meets still finds its run (a second copy appended after the first completed the run would not).
    private readonly SemaphoreSlim _restoring = new(1, 1);

    internal EntryRestoration(LogStore store, LogStoreOptions options)
    {
        _store = store;
        _options = options;
    }

    /// <summary>
    /// The runs of lsns of <paramref name="volume"/> that recovery skipped here and no replica has restored yet (a run whose
    /// damage was written over entirely too: restoring it changes nothing but forgets it).
    /// </summary>
    public IReadOnlyList<LostEntryRun> LostEntries(Id160 volume)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        lock (vol.IndexLock) return vol.Lost.Select(l => new LostEntryRun(l.FirstLsn, l.LastLsn, l.Reason)).ToArray();
    }

    /// <summary>
    /// A replica's side of restoring lost entries: the whole entries <paramref name="firstLsn"/>..<paramref name="lastLsn"/>
    /// of <paramref name="volume"/> as this host holds them, each verified here, in stream form (docs/FORMAT.md, "Streams"),
    /// as many from the first as fit <see cref="MaxLostEntryBytes"/> (at least one: the asker asks again for the rest).
    /// Throws when this host does not hold them all: beyond its head, compacted away, or lost here too.
    /// </summary>
    public Task<byte[]> ReadLostEntriesAsync(Id160 volume, long firstLsn, long lastLsn, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        if (firstLsn < 1 || lastLsn < firstLsn) throw new InvalidRangeException($"lsns {firstLsn}..{lastLsn} are not a run of entries");
        return Task.Run(() =>
        {
            lock (vol.IndexLock)
            {
                if (lastLsn > vol.Lsn) throw new InvalidRangeException($"lsn {lastLsn} of volume {volume} is beyond this host's head (lsn {vol.Lsn})");
                if (vol.Lost.Find(l => l.FirstLsn <= lastLsn && l.LastLsn >= firstLsn) is { } lost)
                    throw new DataCorruptionException(volume, 0, vol.SizeBytes, lost.Reason);
            }
            using var output = new MemoryStream();
            for (var lsn = firstLsn; lsn <= lastLsn; lsn++)
            {
                ct.ThrowIfCancellationRequested();
                var entry = _store.Streams.ReadEntryForStream(vol, lsn);
                if (output.Length > 0 && output.Length + entry.Length > MaxLostEntryBytes) break;
                output.Write(entry);
            }
            return output.ToArray();
        }, ct);
    }

    /// <summary>How many whole entries a copy of entries (<see cref="ReadLostEntriesAsync"/>) holds, counted by their
    /// headers up to the first that does not parse or does not fit (nothing is verified: the restoration does that).</summary>
    public static long EntriesIn(ReadOnlySpan<byte> copy)
    {
        long n = 0;
        while (copy.Length >= EntryHeader.Size && EntryHeader.TryParse(copy, out var h, out _) && h.TotalBytes <= copy.Length)
        {
            n++;
            copy = copy[h.TotalBytes..];
        }
        return n;
    }

    /// <summary>
    /// Restores the lost entries starting at <paramref name="firstLsn"/> from <paramref name="entries"/>, a replica's copy
    /// (<see cref="ReadLostEntriesAsync"/>). The copy is taken only whole and only if every entry verifies (checksums,
    /// digest), belongs to the volume, has the next lsn of the run, is a data, zero, view-change, trash, restore or resize
    /// entry (for the last three, every entry after the run must be readable here), and the entries chain from
    /// the version before the gap to the version the entry after it names (a replica's bytes are never taken on trust);
    /// otherwise nothing is written and the outcome says why. Accepted entries are appended again as they are; each is
    /// applied only where no entry after the gap has written (the ranges still damaged for the run), and the last one
    /// clears that damage; a trash, restore or resize entry sets its state only if no entry after the run sets it, and a
    /// checkpoint follows before the answer.
    /// </summary>
    public async Task<RestoreOutcome> RestoreLostEntriesAsync(Id160 volume, long firstLsn, ReadOnlyMemory<byte> entries, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        await _restoring.WaitAsync(ct).ConfigureAwait(false);
        try { return await RestoreAloneAsync(vol, firstLsn, entries, ct).ConfigureAwait(false); }
        finally { _restoring.Release(); }
    }

    private async Task<RestoreOutcome> RestoreAloneAsync(VolumeState vol, long firstLsn, ReadOnlyMemory<byte> entries, CancellationToken ct)
    {
        var volume = vol.BaseId;
        LostEntries? run;
        lock (vol.IndexLock) run = vol.Lost.Find(l => l.FirstLsn == firstLsn);
        // Restored meanwhile: nothing to do.
        if (run is null) return new RestoreOutcome(0, 0, 0, null);
        var buffers = new List<EntryBuffer>();
        var refusal = CheckLostCopy(vol, run, entries.Span, buffers);
        // A lifecycle entry's state is settled by the headers of the entries after the run: read those up to the head
        // now, off the writer thread (the writer reads only the few appended meanwhile), and refuse if they cannot be.
        LaterLifecycle? later = null;
        var lifecycle = refusal is null && buffers.Exists(b => EntryHeader.TryParse(b.Span, out var bh, out _) && LaterLifecycle.IsLifecycle(bh.Kind));
        if (lifecycle)
        {
            long head;
            lock (vol.IndexLock) head = vol.Lsn;
            later = ReadLaterLifecycle(vol, new LaterLifecycle(run.LastLsn, false, false), head, out var unreadable);
            if (later is null) refusal = $"its trash, restore, resize or protect entry cannot be settled: {unreadable}";
        }
        if (refusal is not null)
        {
            foreach (var b in buffers) b.Dispose();
            return new RestoreOutcome(0, 0, run.LastLsn - run.FirstLsn + 1, refusal);
        }
        ct.ThrowIfCancellationRequested();
        var items = new List<EntryItem>();
        long blocks = 0;
        for (var i = 0; i < buffers.Count; i++)
        {
            var buf = buffers[i];
            EntryHeader.TryParse(buf.Span, out var h, out _);
            blocks += h.StoredCount;
            var item = new EntryItem(buf, vol, h.Kind, h.Lsn, h.Version, 0, durable: i == buffers.Count - 1)
            {
                RestoresLostEntry = true,
                AfterWrite = w => ApplyRestoration(vol, w.Buffer.Span, w.DeviceOffset / BlockSize, later),
            };
            items.Add(item);
            _store.Appender.Enqueue(item);
        }
        foreach (var item in items) await item.Done.Task.ConfigureAwait(false);
        if (lifecycle)
        {
            // The headers that settled a lifecycle entry may go bad later, and replay reads them again: a checkpoint now
            // covers the restoration, so replay never has to.
            await _store.Checkpoints.WriteAndFreeAsync(ct).ConfigureAwait(false);
            bool settled;
            lock (vol.IndexLock) settled = !vol.Lost.Exists(l => l.FirstLsn == run.FirstLsn);
            if (!settled)
                return new RestoreOutcome(0, 0, run.LastLsn - run.FirstLsn + 1,
                    "its trash, restore, resize or protect entry could not be settled: a header of an entry after the run became unreadable while it was written");
        }
        _options.Log?.Invoke($"volume {volume}: entries lsn {run.FirstLsn}..{run.LastLsn}, lost to corruption here, restored from a replica's copy that fits the chain");
        return new RestoreOutcome(buffers.Count, blocks, 0, null);
    }

    /// <summary>Null when <paramref name="copy"/> is exactly the run's entries, chained as the run says (each copied into
    /// <paramref name="buffers"/>, in order); otherwise why it is refused.</summary>
    private string? CheckLostCopy(VolumeState vol, LostEntries run, ReadOnlySpan<byte> copy, List<EntryBuffer> buffers)
    {
        var secret = SecretOver(vol, run.FirstLsn);
        var previous = run.VersionBefore;
        var at = 0;
        for (var lsn = run.FirstLsn; lsn <= run.LastLsn; lsn++)
        {
            if (copy.Length - at < EntryHeader.Size) return $"the copy ends before the entry at lsn {lsn}";
            var rest = copy[at..];
            if (!EntryHeader.TryParse(rest, out var h, out var parseError)) return $"the entry for lsn {lsn}: {parseError}";
            if (h.TotalBytes > rest.Length) return $"the copy ends inside the entry at lsn {lsn}";
            var entry = rest[..h.TotalBytes];
            if (EntryCodec.Verify(entry, out _) is { } bad) return $"the entry for lsn {lsn}: {bad}";
            if (h.Volume != vol.BaseId || h.Lsn != lsn) return $"the entry for lsn {lsn} is lsn {h.Lsn} of volume {h.Volume}";
            if (NotRestorable(entry, h) is { } why) return $"lsn {lsn} is a {h.Kind.ToString().ToLowerInvariant()} entry: {why}";
            if (h.StoredCount > _store.MaxBlocksPerEntry) return $"the entry at lsn {lsn} stores {h.StoredCount} blocks, more than an entry here holds";
            if (VersionChain.PublicOf(h.Parent) != previous)
                return $"the entry for lsn {lsn} does not chain onto version {previous}, this host's version at lsn {lsn - 1}";
            // The holder of the secret the entries were chained with can tell their content too: id = H(s ‖ parent ‖ digest).
            if (secret is not null && VersionChain.PublicOf(VersionChain.NextId(secret, h.Parent, h.Digest)) != h.Version)
                return $"the entry for lsn {lsn} is not what this volume's secret chained: its content does not make its version";
            previous = h.Version;
            var buf = EntryCodec.Allocate(h.StoredCount);
            entry.CopyTo(buf.Span);
            buffers.Add(buf);
            at += h.TotalBytes;
        }
        if (at != copy.Length) return $"the copy holds {copy.Length - at} bytes after the entry at lsn {run.LastLsn}";
        if (previous != run.VersionLast)
            return $"the entry for lsn {run.LastLsn} has version {previous}, but the entry after it here chains onto {run.VersionLast}";
        return null;
    }

    /// <summary>
    /// Null for an entry a restoration can apply: a data or zero entry (applied only where no entry after the run wrote),
    /// a view change (applied only when no view change after the run has set a later view: view numbers grow along a
    /// chain, so the volume's view number tells), or a trash, restore or resize entry (its state applied only when no
    /// entry after the run sets that state: their headers tell, <see cref="ReadLaterLifecycle"/>). Otherwise why not.
    /// </summary>
    private static string? NotRestorable(ReadOnlySpan<byte> entry, EntryHeader h) => h.Kind switch
    {
        EntryKind.Data or EntryKind.Zero => null,
        EntryKind.ViewChange => ViewChangePayload.Decode(entry.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is null ? "its payload is malformed" : null,
        EntryKind.Trash or EntryKind.Restore or EntryKind.Resize or EntryKind.Protect => LogStore.CheckLifecycle(entry, h) is null ? null : "its payload is malformed",
        _ => "only data, zero, view-change, trash, restore, resize and protect entries are restored",
    };

    /// <summary>
    /// <paramref name="seen"/> extended by the headers of the entries after it up to lsn <paramref name="to"/> (the lsn
    /// table names them), or null when one of them cannot be read here (compacted, lost too, or its header bad), with
    /// why in <paramref name="unreadable"/>.
    /// </summary>
    private LaterLifecycle? ReadLaterLifecycle(VolumeState v, LaterLifecycle seen, long to, out string? unreadable)
    {
        unreadable = null;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(LogStore.MaxEntryBlocks))];
        for (var lsn = seen.UpTo + 1; lsn <= to; lsn++)
        {
            long block;
            ulong prefix;
            bool lost;
            lock (v.IndexLock) { block = v.Lsns.BlockOf(lsn); prefix = v.Lsns.PrefixOf(lsn); lost = v.Lost.Exists(l => l.Holds(lsn)); }
            if (lost)
            {
                unreadable = $"the entry at lsn {lsn} after the run is lost here too";
                return null;
            }
            try
            {
                // Not the oldest streamable lsn: recovery raises it over every lost run, and entries between two runs
                // are still here. The header itself tells: a compacted entry's place holds another one, or nothing.
                var h = _store.ReadEntryHeader(block, meta, v.BaseId);
                if (h.Lsn != lsn || h.Volume != v.BaseId || VersionChain.Prefix(h.Version) != prefix)
                {
                    unreadable = $"the entry at lsn {lsn} after the run is not held here any more (compacted away, or restored after it was lost): "
                                 + $"the header at log block {block} the lsn table names is another entry";
                    return null;
                }
                seen = seen.With(lsn, h.Kind, ProtectedLsn(meta, h));
            }
            catch (DataCorruptionException e)
            {
                unreadable = $"the entry at lsn {lsn} after the run: {e.Message}";
                return null;
            }
        }
        return seen;
    }

    /// <summary>
    /// This host's secret of the volume when it chained every entry from <paramref name="firstLsn"/> on (the view it belongs
    /// to began before that lsn), else null: a host that is not the writer, or whose view began later, judges a copy by the
    /// chain's versions alone, as a replica judges its primary's feed.
    /// </summary>
    private static byte[]? SecretOver(VolumeState vol, long firstLsn)
    {
        byte[]? secret;
        Id160 view;
        using (vol.LockChain()) { secret = vol.Secret; view = vol.SecretView; }
        if (secret is null) return null;
        long viewLsn;
        lock (vol.IndexLock) viewLsn = view == vol.BaseId ? 1 : vol.Lsns.Find(view);
        return viewLsn >= 1 && viewLsn < firstLsn ? secret : null;
    }

    /// <summary>
    /// Applies a restored lost entry (live, once written; or replayed): its blocks and zeros go into the volume's index
    /// only inside the ranges still damaged for its run, which no entry after the gap has written (entries before it were
    /// older and are overwritten, as they would have been); a view change sets the view only where no later one has
    /// (<see cref="RestoreView"/>); a trash, restore or resize entry sets the trash state or size only where no entry after
    /// the run up to the head sets it (<paramref name="seen"/>: what was read of them already, live), and a run with one
    /// that cannot be settled that way stays lost (<see cref="LostEntries.Unsettled"/>). The run's last entry clears that
    /// damage: every range left is now what the chain says. A repeat (the run restored already) changes nothing.
    /// </summary>
    private void ApplyRestoration(VolumeState v, ReadOnlySpan<byte> meta, long entryBlock, LaterLifecycle? seen = null)
    {
        if (!EntryHeader.TryParse(meta, out var h, out var err)) throw new InvalidOperationException($"a verified entry failed to parse: {err}");
        string? done = null;
        string? unsettled = null;
        var view = -1L;
        var setsState = false;
        if (LaterLifecycle.IsLifecycle(h.Kind))
        {
            // Writer thread or replay: the entries before this one in the log are exactly the ones applied, so the head
            // now is the same live and in replay.
            LostEntries? lostRun;
            long head;
            lock (v.IndexLock) { lostRun = v.Lost.Find(l => l.Holds(h.Lsn)); head = v.Lsn; }
            if (lostRun is null) return;
            var later = ReadLaterLifecycle(v, seen ?? new LaterLifecycle(lostRun.LastLsn, false, false), head, out unsettled);
            setsState = later is { } l && !l.Supersedes(h.Kind, ProtectedLsn(meta, h));
        }
        lock (v.IndexLock)
        {
            var run = v.Lost.Find(l => l.Holds(h.Lsn));
            if (run is null) return;
            if (unsettled is not null) run.Unsettled = true;
            if (h.Kind == EntryKind.ViewChange) view = RestoreView(v, meta, h);
            // A view change covers no blocks: no runs.
            var where = v.Damage.WithReason(run.Reason);
            foreach (var (start, count, logBlock) in EntryRuns(meta, h, entryBlock))
            foreach (var d in where)
            {
                var from = Math.Max(start, d.Offset / BlockSize);
                var to = Math.Min(start + count, d.End / BlockSize);
                for (var s = from; s < to;)
                {
                    var n = (int)Math.Min(to - s, 1 << 30);
                    if (logBlock != Extent.ZeroLogBlock) v.Index.Insert(s, n, logBlock + (s - start), entryBlock);
                    else if (v.Index.Parent is null) v.Index.Remove(s, n);
                    else v.Index.Insert(s, n, Extent.ZeroLogBlock, entryBlock);
                    s += n;
                }
            }
            if (setsState && h.Kind == EntryKind.Protect) LogStore.ApplyProtection(v, meta, h);
            else if (setsState) LogStore.ApplyLifecycle(v, meta, h);
            if (h.Lsn == run.LastLsn && run.Unsettled) run.Unsettled = false;
            else if (h.Lsn == run.LastLsn)
            {
                v.Damage.ClearReason(run.Reason);
                v.Touch();
                v.Lost.Remove(run);
                done = run.Reason;
            }
        }
        if (view > 0)
        {
            // This host's writer (if it is one) queues its next view change after the restored view, not before it.
            using (v.LockChain()) v.PendingViewNumber = Math.Max(v.PendingViewNumber, view);
            v.WriterViewNumber = Math.Max(v.WriterViewNumber, view);
            _options.Log?.Invoke($"volume {v.BaseId}: the view change at lsn {h.Lsn}, lost to corruption here, restored: view {view}");
        }
        _store.Checkpoints.NoteChange();
        if (LaterLifecycle.IsLifecycle(h.Kind))
            _options.Log?.Invoke(unsettled is not null
                ? $"volume {v.BaseId}: the {h.Kind.ToString().ToLowerInvariant()} entry at lsn {h.Lsn}, lost to corruption here, cannot be settled ({unsettled}); its run stays lost"
                : $"volume {v.BaseId}: the {h.Kind.ToString().ToLowerInvariant()} entry at lsn {h.Lsn}, lost to corruption here, restored; "
                  + (setsState ? "its state applied" : "its state not applied, since an entry after it set that state"));
        if (done is not null) _options.Log?.Invoke($"volume {v.BaseId}: restored what was damaged because {done}");
    }

    /// <summary>The lsn of the version a protect entry names (0 for any other entry).</summary>
    private static long ProtectedLsn(ReadOnlySpan<byte> meta, EntryHeader h) =>
        h.Kind == EntryKind.Protect ? ProtectionPayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength), h.Lsn)?.Lsn ?? 0 : 0;

    /// <summary>
    /// Under IndexLock, a restored view change: it sets the volume's view, view number and replica set only when no view
    /// change after the lost run has set a later view already (view numbers grow along a chain). Returns the view number
    /// it set, or -1 when a later view stays.
    /// </summary>
    private static long RestoreView(VolumeState v, ReadOnlySpan<byte> meta, EntryHeader h)
    {
        var p = ViewChangePayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength));
        if (p is null || p.ViewNumber <= v.ViewNumber) return -1;
        Ownership.ApplyView(v, meta, h);
        return p.ViewNumber;
    }

    /// <summary>The runs a data or zero entry maps: (first block, count, log block of the first, or ZeroLogBlock); a shrink
    /// drops the blocks beyond its new end (zeros, as replay's index does), and other entries map none.</summary>
    private static List<(long Start, long Count, long LogBlock)> EntryRuns(ReadOnlySpan<byte> meta, EntryHeader h, long entryBlock)
    {
        var runs = new List<(long, long, long)>();
        if (h.Kind == EntryKind.Resize)
        {
            if (ResizePayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is { } p && p.NewSize < p.OldSize)
                runs.Add((p.NewSize / BlockSize, (p.OldSize - p.NewSize) / BlockSize, Extent.ZeroLogBlock));
            return runs;
        }
        if (h.Kind is not (EntryKind.Data or EntryKind.Zero)) return runs;
        if (h.Kind == EntryKind.Zero)
        {
            runs.Add((h.FirstBlock, BinaryPrimitives.ReadInt64LittleEndian(meta[EntryHeader.OffBitmap..]), Extent.ZeroLogBlock));
            return runs;
        }
        var dataStart = entryBlock + h.MetaSectors;
        foreach (var run in new StoredRuns(meta, h.BlockCount))
            runs.Add((h.FirstBlock + run.First, run.Count, run.Stored ? dataStart + run.StoredIndex : Extent.ZeroLogBlock));
        return runs;
    }

    /// <summary>
    /// Writer thread, before a restored entry is placed: null while its run is still to restore in the volume held here
    /// (a full resync may have replaced the copy meanwhile), so replay finds the run for every restored entry it meets.
    /// </summary>
    internal Exception? AdmitRestoration(EntryItem e, VolumeState v)
    {
        if (!_store.VolumeStates.TryGetValue(v.BaseId, out var held) || held != v)
            return new EntryRejectedException($"volume {v.BaseId} was replaced here before its lost entries were restored", e.Lsn);
        lock (v.IndexLock)
            return v.Lost.Exists(l => l.Holds(e.Lsn)) ? null : new EntryRejectedException($"volume {v.BaseId}: lsn {e.Lsn} is not lost here", e.Lsn);
    }

    /// <summary>Replay: a data, zero, view-change, trash, restore or resize entry at an lsn recovery skipped earlier is a
    /// restoration of it (true), else not one.</summary>
    internal bool ReplayRestoration(VolumeState v, ReadOnlySpan<byte> span, EntryHeader h, long block)
    {
        if (!(h.Kind is EntryKind.Data or EntryKind.Zero or EntryKind.ViewChange || LaterLifecycle.IsLifecycle(h.Kind)) || h.Lsn > v.Lsn) return false;
        if (LaterLifecycle.IsLifecycle(h.Kind) && LogStore.CheckLifecycle(span, h) is not null) return false;
        lock (v.IndexLock)
            if (!v.Lost.Exists(l => l.Holds(h.Lsn))) return false;
        ApplyRestoration(v, span, block);
        return true;
    }

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
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
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
        _store.Appender.Enqueue(item);
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
    internal Exception? AdmitBadEntryCopy(EntryItem e, VolumeState v)
    {
        if (!_store.VolumeStates.TryGetValue(v.BaseId, out var held) || held != v)
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
            foreach (var (_, index, owner) in _store.AllIndexes())
                lock (owner.IndexLock) index.Relocate(start, (int)count, logBlock - shift, logBlock, newEntry);
            _store.Damage.ClearRepaired(start, (int)count, logBlock);
        }
        _store.Checkpoints.NoteChange();
    }

    /// <summary>
    /// Replay: a data entry at an lsn the volume holds, not lost, with the version the lsn table keeps for it, written at
    /// another place than the table names, is a copy restored in place of that entry (true: applied), else not one.
    /// </summary>
    internal bool ReplayBadEntryCopy(VolumeState v, ReadOnlySpan<byte> span, EntryHeader h, long block)
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
        if (h.StoredCount > _store.MaxBlocksPerEntry) return $"the entry at lsn {lsn} stores {h.StoredCount} blocks, more than an entry here holds";
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
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(LogStore.MaxEntryBlocks))];
        try
        {
            var h = _store.ReadEntryHeader(block, meta, vol.BaseId);
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
        foreach (var (_, index, owner) in _store.AllIndexes())
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
