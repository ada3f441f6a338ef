// Restoring entries that recovery had to skip (a header beyond correction, docs/FORMAT.md "Recovery") from a replica's
// copy of them: the replica sends the whole entries (ReadLostEntriesAsync); this host takes them only if they chain from
// the version before the gap to the version the entry after it names, and appends them again, each applied only where
// no entry after the gap has written since (the ranges still damaged for the lost entries), which clears that damage
// (RestoreLostEntriesAsync); a lost trash, restore or resize entry sets the volume's state only when no entry after the
// gap has set it since (their headers tell). Replay does the same with the appended entries.
using System.Buffers.Binary;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>Most bytes of entries one answer of <see cref="ReadLostEntriesAsync"/> carries (one message between hosts,
    /// under Akka's frame size); one entry is always sent, whatever its size (at most 1 MiB + 9 KiB).</summary>
    public const int MaxLostEntryBytes = 3 << 20;

    /// <summary>Most bytes of entries one run restored from a replica may take (they are held in memory until all of them
    /// are checked); a longer run stays damaged.</summary>
    public const int MaxLostRunBytes = 256 << 20;

    /// <summary>
    /// The runs of lsns of <paramref name="volume"/> that recovery skipped here and no replica has restored yet (a run whose
    /// damage was written over entirely too: restoring it changes nothing but forgets it).
    /// </summary>
    public IReadOnlyList<LostEntryRun> LostEntries(Id160 volume)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        lock (vol.IndexLock) return vol.Lost.Select(l => new LostEntryRun(l.FirstLsn, l.LastLsn, l.Reason)).ToArray();
    }

    // One restoration at a time, each until its entries are applied: a run is restored once, so every restored entry
    // replay meets still finds its run (a second copy appended after the first completed the run would not).
    private readonly SemaphoreSlim _restoring = new(1, 1);

    /// <summary>
    /// A replica's side of restoring lost entries: the whole entries <paramref name="firstLsn"/>..<paramref name="lastLsn"/>
    /// of <paramref name="volume"/> as this host holds them, each verified here, in stream form (docs/FORMAT.md, "Streams"),
    /// as many from the first as fit <see cref="MaxLostEntryBytes"/> (at least one: the asker asks again for the rest).
    /// Throws when this host does not hold them all: beyond its head, compacted away, or lost here too.
    /// </summary>
    public Task<byte[]> ReadLostEntriesAsync(Id160 volume, long firstLsn, long lastLsn, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
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
                var entry = ReadEntryForStream(vol, lsn);
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
        ThrowIfDisposed();
        var vol = Volume(volume);
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
            _appender.Enqueue(item);
        }
        foreach (var item in items) await item.Done.Task.ConfigureAwait(false);
        if (lifecycle)
        {
            // The headers that settled a lifecycle entry may go bad later, and replay reads them again: a checkpoint now
            // covers the restoration, so replay never has to.
            await Checkpoints.WriteAndFreeAsync(ct).ConfigureAwait(false);
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
            if (h.StoredCount > MaxBlocksPerEntry) return $"the entry at lsn {lsn} stores {h.StoredCount} blocks, more than an entry here holds";
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
        EntryKind.Trash or EntryKind.Restore or EntryKind.Resize or EntryKind.Protect => CheckLifecycle(entry, h) is null ? null : "its payload is malformed",
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
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
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
                var h = ReadEntryMeta(block, meta, v.BaseId);
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
            if (setsState && h.Kind == EntryKind.Protect) ApplyProtection(v, meta, h);
            else if (setsState) ApplyLifecycle(v, meta, h);
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
        Checkpoints.NoteChange();
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
    private Exception? AdmitRestoration(EntryItem e, VolumeState v)
    {
        if (!_volumes.TryGetValue(v.BaseId, out var held) || held != v)
            return new EntryRejectedException($"volume {v.BaseId} was replaced here before its lost entries were restored", e.Lsn);
        lock (v.IndexLock)
            return v.Lost.Exists(l => l.Holds(e.Lsn)) ? null : new EntryRejectedException($"volume {v.BaseId}: lsn {e.Lsn} is not lost here", e.Lsn);
    }

    /// <summary>Replay: a data, zero, view-change, trash, restore or resize entry at an lsn recovery skipped earlier is a
    /// restoration of it (true), else not one.</summary>
    private bool ReplayRestoration(VolumeState v, ReadOnlySpan<byte> span, EntryHeader h, long block)
    {
        if (!(h.Kind is EntryKind.Data or EntryKind.Zero or EntryKind.ViewChange || LaterLifecycle.IsLifecycle(h.Kind)) || h.Lsn > v.Lsn) return false;
        if (LaterLifecycle.IsLifecycle(h.Kind) && CheckLifecycle(span, h) is not null) return false;
        lock (v.IndexLock)
            if (!v.Lost.Exists(l => l.Holds(h.Lsn))) return false;
        ApplyRestoration(v, span, block);
        return true;
    }
}
