// Forks: where two chains of a volume part (VersionAt), and splitting a divergent suffix off into a branch while the
// volume itself goes back to the common entry (a local Rewind entry, docs/FORMAT.md) so it can follow the other chain.
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>
    /// The public version of <paramref name="volume"/>'s entry at <paramref name="lsn"/> (1..head), from its header only.
    /// Throws <see cref="VolumeNotFoundException"/>, <see cref="InvalidRangeException"/> (lsn out of range) or
    /// <see cref="VersionCompactedException"/> (the header was reclaimed by compaction).
    /// </summary>
    public Id160 VersionAt(Id160 volume, long lsn)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        long block;
        lock (vol.IndexLock)
        {
            if (lsn < 1 || lsn > vol.Lsn) throw new InvalidRangeException($"volume {volume} holds lsns 1..{vol.Lsn}, not {lsn}");
            if (lsn == vol.Lsn) return vol.Version;
            // The history base's version is kept with it (a full resync may have installed the volume there).
            if (vol.History is { } b && b.Lsn == lsn) return b.Version;
            if (lsn < vol.OldestStreamableLsn) throw new VersionCompactedException(volume, vol.OldestStreamableLsn);
            block = vol.Lsns.BlockOf(lsn);
        }
        if (_metaCache.Get(block) is { } cached && EntryHeader.TryParse(cached, out var c, out _) && c.Lsn == lsn && c.Volume == volume)
            return c.Version;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        return HeaderAt(vol, block, lsn, meta).Version;
    }

    /// <summary>
    /// Whether <paramref name="volume"/>'s entry at <paramref name="lsn"/> here has <paramref name="version"/>: from its
    /// header while the log holds it; once compaction reclaimed the header, from the lsn table's version map, which
    /// keeps a 64-bit prefix of every version this log appended (a volume installed by a full resync has none below
    /// the lsn it was installed at: false there, as for an lsn beyond the head).
    /// </summary>
    public bool HoldsVersionAt(Id160 volume, long lsn, Id160 version)
    {
        ThrowIfDisposed();
        if (GetVolume(volume) is null || lsn < 1) return false;
        try { return VersionAt(volume, lsn) == version; }
        catch (VersionCompactedException)
        {
            var vol = Volume(volume);
            lock (vol.IndexLock) return vol.Lsns.Find(version) == lsn;
        }
        catch (InvalidRangeException) { return false; }
    }

    /// <summary>
    /// Keeps <paramref name="volume"/> as it reads now as a writable branch of its head (a copy about to be replaced
    /// by a full resync while nobody can tell whether it is on the primary's chain): a branch of exactly the head
    /// version with no entry of its own is reused, so asking again (after a crash or a failed resync) makes no second
    /// one. Returns the branch.
    /// </summary>
    public async Task<VolumeInfo> KeepAsBranchAsync(Id160 volume, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        Id160 head;
        lock (vol.IndexLock) head = vol.Version;
        if (UnwrittenBranchOf(head) is { } kept) return GetVolume(kept) ?? throw new VolumeNotFoundException(kept);
        return await BranchAsync(head, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Keeps the entries of <paramref name="volume"/> after <paramref name="keepLsn"/> (a divergent suffix) as a new
    /// writable branch of the current head, which reads exactly as the volume reads now, and rewinds the volume to
    /// <paramref name="keepLsn"/>: index, lsn table and heads as they were then, no longer writable here (its secret is
    /// dropped, in memory and in the key file). Durable on return and across a crash at any point: the secret goes first
    /// (nothing more chains onto the suffix), then the branch entry is written, then a Rewind entry; a split interrupted
    /// before the rewind is durable is finished by calling this again (it reuses the unwritten branch). Entries of the other chain from keepLsn+1 then
    /// apply. Appends to the volume must not race with this (the split fails, rewinding nothing, if the head moves).
    /// Returns the branch. Throws <see cref="InvalidRangeException"/> unless 1 &lt;= keepLsn &lt; head, and
    /// <see cref="VersionCompactedException"/> when compaction reclaimed headers the rewound index must be rebuilt from.
    /// </summary>
    public async Task<VolumeInfo> SplitForkAsync(Id160 volume, long keepLsn, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        CheckKeepLsn(vol, keepLsn);
        // No compaction until the rewound index is in place: before that it is in no list compaction relocates.
        await _compactionGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // The abandoned chain can no longer be extended here: the secret goes from memory, then durably from the key
            // file, before the rewind can be durable (a restart must never find the rewound volume writable).
            using (var chain = vol.LockChain())
            {
                // The chain's owner here is writing it: it must step down first (it is asked, not overruled).
                if (Ownership.ClaimRefusal(chain, null) is { } claimed) throw claimed;
                vol.Secret = null;
            }
            _keys.Remove(volume);
            // Every entry queued before now is applied: the head checked below is final.
            var flush = new FlushItem();
            _appender.Enqueue(flush);
            await flush.Done.Task.ConfigureAwait(false);
            var (head, headVersion) = CheckKeepLsn(vol, keepLsn);
            var (index, keep, view) = IndexAt(vol, keepLsn);
            var branch = UnwrittenBranchOf(headVersion) ?? (await BranchAsync(headVersion, CancellationToken.None).ConfigureAwait(false)).BaseId;
            await AppendRewindAsync(vol, keep, new RewindPayload(head, headVersion, branch), index, view).ConfigureAwait(false);
            _options.Log?.Invoke($"volume {volume}: lsns {keepLsn + 1}..{head} kept as branch {branch}; the volume is back at lsn {keepLsn}");
            return GetVolume(branch) ?? throw new VolumeNotFoundException(branch);
        }
        finally { _compactionGate.Release(); }
    }

    private static (long Head, Id160 Version) CheckKeepLsn(VolumeState vol, long keepLsn)
    {
        lock (vol.IndexLock)
        {
            if (keepLsn < 1 || keepLsn >= vol.Lsn)
                throw new InvalidRangeException($"volume {vol.BaseId}: the lsn to keep must be in 1..{vol.Lsn - 1} (the head is lsn {vol.Lsn}), not {keepLsn}");
            // The rewound index is rebuilt from the headers of lsns 1..keepLsn: all of them must still be in the log.
            if (vol.OldestStreamableLsn > 1) throw new VersionCompactedException(vol.BaseId, vol.OldestStreamableLsn);
            return (vol.Lsn, vol.Version);
        }
    }

    /// <summary>A branch of exactly <paramref name="version"/> with no entry of its own: what an interrupted split left.</summary>
    private Id160? UnwrittenBranchOf(Id160 version)
    {
        foreach (var v in _volumes.Values)
            lock (v.IndexLock)
                if (v.Committed && v.BranchedFrom == version && v.Lsn == 1) return v.BaseId;
        return null;
    }

    /// <summary>
    /// The volume's index as of <paramref name="lsn"/>, rebuilt from the headers of entries 1..lsn (no data is read),
    /// over the same frozen parent when the volume is a branch; that entry's header; and the view in force there (the
    /// last view change at or before it, else the creation entry's replica set as view 0).
    /// </summary>
    private (ExtentIndex Index, EntryHeader Keep, VolumeView View) IndexAt(VolumeState vol, long lsn)
    {
        ExtentIndex index;
        lock (vol.IndexLock) index = vol.Index.Parent is { } parent ? parent.Branch() : new ExtentIndex();
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        using var window = new HeaderWindow(_device, meta.Length);
        EntryHeader h = default;
        VolumeView? view = null;
        for (long l = 1; l <= lsn; l++)
        {
            long block;
            lock (vol.IndexLock) block = vol.Lsns.BlockOf(l);
            h = CheckedHeader(vol, window.At(block), block, l, meta);
            IndexEntry(index, meta, h, block);
            view = VolumeView.After(view, h, meta)
                   ?? throw new DataCorruptionException(vol.BaseId, 0, 0, $"the {h.Kind} entry at log block {block} (lsn {l}) has a malformed payload");
        }
        return (index, h, view!);
    }

    /// <summary>Parses and checks (header CRC, lsn, volume) the entry whose log starts at <paramref name="s"/>; its meta goes to <paramref name="meta"/>.</summary>
    internal static EntryHeader CheckedHeader(VolumeState vol, ReadOnlySpan<byte> s, long block, long lsn, byte[] meta)
    {
        if (!EntryHeader.TryParse(s, out var h, out var err))
            throw new DataCorruptionException(vol.BaseId, 0, 0, $"the entry header at log block {block} is unreadable: {err}");
        var metaLen = EntryHeader.Size * h.MetaSectors;
        if (metaLen > s.Length || !EntryCodec.HeaderCrcMatches(s[..metaLen]))
            throw new DataCorruptionException(vol.BaseId, h.FirstBlock * BlockSize, (long)h.BlockCount * BlockSize, $"the entry header at log block {block} fails its checksum");
        if (h.Lsn != lsn || h.Volume != vol.BaseId)
            throw new DataCorruptionException(vol.BaseId, 0, 0, $"the entry at log block {block} is not lsn {lsn} of the volume");
        s[..metaLen].CopyTo(meta);
        return h;
    }

    /// <summary>The checked header (and CRC table, into <paramref name="meta"/>) of the volume's entry <paramref name="lsn"/>.</summary>
    internal EntryHeader HeaderAt(VolumeState vol, long block, long lsn, byte[] meta)
    {
        var h = ReadEntryMeta(block, meta, vol.BaseId);
        if (h.Lsn != lsn || h.Volume != vol.BaseId)
            throw new DataCorruptionException(vol.BaseId, 0, 0, $"the entry at log block {block} is not lsn {lsn} of the volume");
        return h;
    }

    /// <summary>Queues the Rewind entry behind everything the volume has queued; it takes effect, in log order, once durable.</summary>
    private async Task AppendRewindAsync(VolumeState vol, EntryHeader keep, RewindPayload from, ExtentIndex index, VolumeView view)
    {
        var payload = new byte[RewindPayload.Size];
        from.Encode(payload);
        var buf = EntryCodec.BuildMetadata(EntryKind.Rewind, vol.BaseId, 0, payload, Now);
        // Its lsn and version name the entry the volume goes back to; the writer's head becomes that entry.
        EntryCodec.SetChain(buf.Span, vol.BaseId, keep.Lsn, Id160.Zero, keep.Version);
        EntryItem item;
        using (vol.LockChain())
        {
            if (vol.PendingLsn != from.FromLsn || vol.PendingVersion != from.FromVersion)
            {
                buf.Dispose();
                throw new CloudFsException($"volume {vol.BaseId} changed while its fork was being split; it was not rewound");
            }
            item = new EntryItem(buf, vol, EntryKind.Rewind, keep.Lsn, keep.Version, vol.Epoch, durable: true)
            {
                ViewNumber = view.Number,
                AfterWrite = _ => ApplyRewind(vol, keep, index, view),
            };
            vol.PendingLsn = keep.Lsn;
            vol.PendingVersion = keep.Version;
            vol.PendingId = Id160.Zero;
            // The rewound suffix's view changes go with it: the other chain's next view follows the view at keep.
            vol.PendingViewNumber = view.Number;
            _appender.Enqueue(item);
        }
        await item.Done.Task.ConfigureAwait(false);
    }

    /// <summary>Writer thread: a rewind is placed only onto the exact head it was built for (what recovery checks too).</summary>
    private static Exception? AdmitRewind(EntryItem e, VolumeState v)
    {
        var from = RewindPayload.Decode(e.Buffer.Span.Slice(EntryHeader.OffBitmap, RewindPayload.Size));
        if (from is { } f && e.Epoch == Volatile.Read(ref v.Epoch) && v.WriterLsn == f.FromLsn && v.WriterVersion == f.FromVersion) return null;
        // Entries queued after the rewind chained onto it: abandon them and restart the chain at the writer's head.
        using (var chain = v.LockChain()) v.RestartAtWriterHead(chain);
        return new CloudFsException($"volume {v.BaseId} changed while its fork was being split; it was not rewound");
    }

    /// <summary>The committed state goes back to <paramref name="keep"/> and its view (after the rewind entry is written, or on replay).</summary>
    private void ApplyRewind(VolumeState vol, EntryHeader keep, ExtentIndex index, VolumeView view)
    {
        lock (vol.IndexLock)
        {
            vol.Index = index;
            vol.Replicas = view.Replicas;
            vol.ViewNumber = view.Number;
            vol.View = view.Version;
            vol.SizeBytes = view.SizeBytes;
            vol.TrashedAtUnixMs = view.TrashedAtUnixMs;
            vol.Lsns.Truncate(keep.Lsn);
            // The protections are what the protect entries up to keep left: a rewound protect or unprotect is undone.
            vol.Protected = new SortedList<long, Id160>(view.Protected.ToDictionary(p => p.Lsn, p => p.Version));
            ForgetHistoryAfter(vol, keep.Lsn);
            vol.Lsn = keep.Lsn;
            vol.Version = keep.Version;
            vol.HeadParent = keep.Parent;
            vol.HeadDigest = keep.Digest;
            vol.Touch();
        }
        Checkpoints.NoteChange();
        vol.Recent?.Clear();
        // Live streams of the volume wake up and end (their chain was abandoned); no one listens during recovery.
        vol.Appended.Raise();
    }

    /// <summary>Recovery: a rewind applies only to the exact head it names, and only when the entry it keeps is the one it names.</summary>
    private string? ReplayRewind(ReadOnlySpan<byte> span, EntryHeader h)
    {
        if (!_volumes.TryGetValue(h.Volume, out var v) || !v.Committed) return $"a rewind of unknown volume {h.Volume}";
        if (RewindPayload.Decode(span.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is not { } from) return "a rewind entry with a malformed payload";
        if (v.Lsn != from.FromLsn || v.Version != from.FromVersion)
            return $"volume {v.BaseId}: a rewind from lsn {from.FromLsn} does not match the head (lsn {v.Lsn})";
        if (h.Lsn >= from.FromLsn) return $"volume {v.BaseId}: a rewind to lsn {h.Lsn} does not go back from lsn {from.FromLsn}";
        if (v.OldestStreamableLsn > 1) return $"volume {v.BaseId}: a rewind over compacted history";
        try
        {
            var (index, keep, view) = IndexAt(v, h.Lsn);
            if (keep.Version != h.Version) return $"volume {v.BaseId}: the rewind keeps version {h.Version} at lsn {h.Lsn}, but the log holds {keep.Version}";
            ApplyRewind(v, keep, index, view);
            return null;
        }
        catch (DataCorruptionException ex) { return ex.Message; }
    }
}
