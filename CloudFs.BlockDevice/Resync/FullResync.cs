// Full resync: a volume moved whole as of one lsn when the history before it was compacted away (its history base when
// it keeps history, else its head; the entries after that lsn follow as a stream). The sender reads
// the live blocks of a frozen snapshot in bounded pieces of ResyncData entries and ends with a ResyncCommit entry; the
// receiver stages the pieces apart from the volume and installs them atomically with the commit (docs/FORMAT.md).
using System.Buffers;
using System.Buffers.Binary;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Resync;

/// <summary>
/// The full resyncs of one store (<see cref="LogStore.Resync"/>): the snapshots it sends from and the copies it stages
/// while receiving, and the replay of their entries. It owns that state and its lock; the volumes, the log writer and
/// the reads are the store's.
/// </summary>
public sealed class FullResync
{
    private const int BlockSize = LogStore.BlockSize;

    /// <summary>Blocks one resync entry covers at most: two such entries with their tables fit a 1 MiB message.</summary>
    internal const int ResyncEntryBlocks = 960;
    private static readonly TimeSpan ResyncSourceIdle = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan ResyncSourceDone = TimeSpan.FromSeconds(30);

    private readonly LogStore _store;
    private readonly LogStoreOptions _options;
    private readonly object _resyncLock = new();
    private readonly Dictionary<Id160, StagedResync> _staging = new();
    private readonly Dictionary<Id160, ResyncSource> _sources = new();

    internal FullResync(LogStore store, LogStoreOptions options)
    {
        _store = store;
        _options = options;
    }

    /// <summary>
    /// True while a resync is being received: a checkpoint now would skip pieces replay must see. A transfer nobody
    /// fed for <see cref="ResyncSourceIdle"/> is abandoned here, so a lost receiver never stops checkpoints for good.
    /// </summary>
    internal bool IsStaging
    {
        get
        {
            var now = DateTime.UtcNow;
            lock (_resyncLock)
            {
                foreach (var st in _staging.Values.Where(st => now - st.LastUse > ResyncSourceIdle).ToList())
                {
                    _staging.Remove(st.Transfer);
                    _options.Log?.Invoke($"resync transfer {st.Transfer} of volume {st.Volume} was idle too long; abandoned");
                }
                return _staging.Count > 0;
            }
        }
    }

    // ---------------- sender ----------------

    /// <summary>
    /// The next piece of a full resync of <paramref name="volume"/>: with <paramref name="transfer"/> zero, a new transfer
    /// as of the volume's history base when it keeps history (so the receiver keeps the same versions; the chunk's lsn
    /// says which), else as of its current head (the index there is frozen for it); otherwise the piece of that transfer starting at
    /// <paramref name="fromBlock"/> (the previous piece's NextBlock; asking for the same piece again repeats it).
    /// At most about <paramref name="maxBytes"/> (at least one entry); all-zero and unwritten ranges are not sent. No entry
    /// carries more than <paramref name="maxEntryBlocks"/> blocks (the receiver's <see cref="LogStore.MaxBlocksPerEntry"/>: its
    /// segments must hold them). Throws <see cref="ResyncRefusedException"/> for an unknown or expired transfer or a piece out of order.
    /// </summary>
    public async Task<ResyncChunk> ReadAsync(Id160 volume, Id160 transfer, long fromBlock, int maxBytes, int maxEntryBlocks = ResyncEntryBlocks, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        PruneResyncSources();
        ResyncSource? src = null;
        if (transfer.IsZero)
        {
            // A damaged copy would hand on stale or unreadable blocks as if they were the volume.
            lock (vol.IndexLock)
                if (vol.Damage.Count > 0)
                    throw new ResyncRefusedException($"volume {volume} is damaged on this host ({vol.Damage.Snapshot()[0].Reason}): it cannot be the source of a full resync");
            // A volume that keeps history is sent as of its history base, so the new replica keeps the same versions.
            src = await _store.AtHistoryBaseAsync(vol, (b, head) => Register(AsOfBase(vol, b, head))).ConfigureAwait(false);
            if (src is null)
            {
                // At a barrier: everything applied so far is in the snapshot, and the head matches it exactly.
                var barrier = new BarrierItem(_ =>
                {
                    lock (vol.IndexLock)
                    {
                        // A base at the head (or one whose state is unknown) still makes the receiver keep history from here.
                        var head = new ResyncManifest(vol.SizeBytes, vol.Mode, vol.Replicas, vol.BranchedFrom, vol.ViewNumber, vol.View,
                            vol.HeadParent, vol.HeadDigest, 0, 0, Id160.Zero)
                        {
                            Name = vol.Name, TrashedAtUnixMs = vol.TrashedAtUnixMs, BaseHeldUntilLsn = vol.History is null && _options.RetentionTime <= TimeSpan.Zero ? 0 : vol.Lsn,
                        };
                        src = Register(new ResyncSource(Id160.Random(), vol, vol.Lsn, vol.Version, vol.Index.Snapshot(), head));
                    }
                });
                _store.Appender.Enqueue(barrier);
                await barrier.Done.Task.ConfigureAwait(false);
            }
            fromBlock = 0;
            _options.Log?.Invoke($"volume {volume}: sending a full resync as of lsn {src!.Lsn}{(src.Head.BaseHeldUntilLsn > 0 ? $", its history base (head {src.Head.BaseHeldUntilLsn})" : "")} (transfer {src.Transfer})");
        }
        else
        {
            lock (_resyncLock) _sources.TryGetValue(transfer, out src);
            if (src is null || src.Volume.BaseId != volume)
                throw new ResyncRefusedException($"resync transfer {transfer} of volume {volume} is unknown here (it expired or the node restarted); start a new one");
        }
        var s = src!;
        maxBytes = Math.Max(maxBytes, 64 << 10);
        // An entry fits the piece (header and CRC table included) and the receiver's segments.
        var window = Math.Clamp(maxBytes / BlockSize - 16, 16, Math.Max(16, Math.Min(ResyncEntryBlocks, maxEntryBlocks)));
        return await Task.Run(() => NextResyncPiece(s, fromBlock, maxBytes, window), ct).ConfigureAwait(false);
    }

    private ResyncChunk NextResyncPiece(ResyncSource src, long fromBlock, int maxBytes, int window)
    {
        lock (src.Gate)
        {
            src.LastUse = DateTime.UtcNow;
            if (fromBlock == src.LastFrom && src.LastChunk is { } again) return again;
            if (src.Complete || fromBlock != src.NextBlock)
                throw new ResyncRefusedException($"resync transfer {src.Transfer}: the next piece starts at block {src.NextBlock}, not {fromBlock}");
            var vol = src.Volume;
            var end = src.Head.SizeBytes / BlockSize;
            var parts = new List<byte[]>();
            var total = 0;
            var pos = fromBlock;
            // The totals move only once the piece is whole: a failed read leaves the transfer where it was.
            var (pieces, storedBlocks, digest) = (src.Pieces, src.StoredBlocks, src.Digest);
            var extents = new List<Extent>();
            var data = ArrayPool<byte>.Shared.Rent(ResyncEntryBlocks * BlockSize);
            try
            {
                while (pos < end)
                {
                    var n = (int)Math.Min(window, end - pos);
                    var entry = ReadResyncWindow(src, pos, n, extents, data, parts.Count == 0 ? int.MaxValue : maxBytes - total);
                    if (entry is { Length: 0 }) break; // the piece is full
                    if (entry is not null)
                    {
                        parts.Add(entry);
                        total += entry.Length;
                        pieces++;
                        storedBlocks += BinaryPrimitives.ReadUInt16LittleEndian(entry.AsSpan(EntryHeader.OffStoredCount));
                        digest = ResyncManifest.Chain(digest, new Id160(entry.AsSpan(EntryHeader.OffDigest)));
                    }
                    pos += n;
                }
            }
            finally { ArrayPool<byte>.Shared.Return(data); }
            (src.Pieces, src.StoredBlocks, src.Digest) = (pieces, storedBlocks, digest);
            src.NextBlock = pos;
            if (pos >= end)
            {
                parts.Add(BuildResyncCommit(src));
                src.Complete = true;
                _options.Log?.Invoke($"volume {vol.BaseId}: resync transfer {src.Transfer} read whole ({src.Pieces} entries, {src.StoredBlocks * BlockSize} bytes)");
            }
            var chunk = new ResyncChunk(src.Transfer, src.Lsn, src.Version, Concat(parts, total + (src.Complete ? parts[^1].Length : 0)), pos, src.Complete);
            src.LastFrom = fromBlock;
            src.LastChunk = chunk;
            return chunk;
        }
    }

    /// <summary>
    /// The ResyncData entry for the live blocks of [pos, pos+n) of the snapshot; null when there are none; empty when
    /// it might not fit in <paramref name="room"/> bytes (judged before reading, as if every block were stored).
    /// </summary>
    private byte[]? ReadResyncWindow(ResyncSource src, long pos, int n, List<Extent> extents, byte[] data, int room)
    {
        var vol = src.Volume;
        extents.Clear();
        // Counted as a reader from the lookup to the end of the reads: compaction frees no segment meanwhile, and a
        // lookup after a free already sees the relocated places.
        var slot = _store.EnterRead();
        try
        {
            lock (vol.IndexLock) src.Snapshot.Lookup(pos, n, extents);
            long first = -1, last = -1;
            foreach (var e in extents)
                if (!e.IsZero) { if (first < 0) first = e.Start; last = e.End; }
            if (first < 0) return null;
            var span = (int)(last - first);
            if (EntryHeader.TotalBytesFor(span) > room) return [];
            var bytes = data.AsSpan(0, span * BlockSize);
            bytes.Clear();
            foreach (var e in extents)
                if (!e.IsZero) _store.ReadRun(vol, e, bytes.Slice((int)(e.Start - first) * BlockSize, e.Count * BlockSize));
            using var buf = EntryCodec.BuildData(EntryKind.ResyncData, vol.BaseId, first, bytes, LogStore.Now);
            if (BinaryPrimitives.ReadUInt16LittleEndian(buf.Span[EntryHeader.OffStoredCount..]) == 0) return null;
            EntryCodec.SetChain(buf.Span, vol.BaseId, src.Lsn, src.Transfer, Id160.Zero);
            EntryCodec.Seal(buf.Span, 0);
            return buf.Span.ToArray();
        }
        finally { _store.ExitRead(slot); }
    }

    private static byte[] Concat(List<byte[]> parts, int total)
    {
        if (parts.Count == 1) return parts[0];
        var all = GC.AllocateUninitializedArray<byte>(total);
        var at = 0;
        foreach (var p in parts) { p.CopyTo(all, at); at += p.Length; }
        return all;
    }

    private static byte[] BuildResyncCommit(ResyncSource src)
    {
        Span<byte> block = stackalloc byte[BlockSize];
        (src.Head with { Pieces = src.Pieces, StoredBlocks = src.StoredBlocks, PiecesDigest = src.Digest }).Encode(block);
        using var buf = EntryCodec.BuildData(EntryKind.ResyncCommit, src.Volume.BaseId, 0, block, LogStore.Now);
        EntryCodec.SetChain(buf.Span, src.Volume.BaseId, src.Lsn, src.Transfer, src.Version);
        EntryCodec.Seal(buf.Span, 0);
        return buf.Span.ToArray();
    }

    /// <summary>A transfer as of <paramref name="b"/> (the volume's history base, or lsn 1 of a whole history: an index
    /// frozen for the transfer, and the chain's state there), sent while the volume's head is <paramref name="head"/>.</summary>
    private static ResyncSource AsOfBase(VolumeState vol, HistoryBase b, long head)
    {
        var c = b.Chain ?? throw new InvalidOperationException($"volume {vol.BaseId}: a resync as of lsn {b.Lsn} without the chain's state there");
        var index = b.Index ?? throw new InvalidOperationException($"volume {vol.BaseId}: a resync as of lsn {b.Lsn} without its index");
        var manifest = new ResyncManifest(b.SizeBytes, vol.Mode, c.Replicas, vol.BranchedFrom, c.ViewNumber, c.View, c.HeadParent, c.HeadDigest, 0, 0, Id160.Zero)
        {
            Name = vol.Name, TrashedAtUnixMs = c.TrashedAtUnixMs, BaseHeldUntilLsn = head,
        };
        return new ResyncSource(Id160.Random(), vol, b.Lsn, b.Version, index, manifest);
    }

    private ResyncSource Register(ResyncSource src)
    {
        lock (_resyncLock) _sources[src.Transfer] = src;
        return src;
    }

    /// <summary>The volumes being sent as of their history base, and that lsn: compaction keeps the entries after it,
    /// which the receiver pulls next, also when the base moves on meanwhile (a transfer as of the head leaves them to
    /// the stream floor, as before).</summary>
    internal List<(VolumeState Volume, long Lsn)> SendingAsOfHistory()
    {
        PruneResyncSources();
        lock (_resyncLock) return _sources.Values.Where(s => s.Head.BaseHeldUntilLsn > s.Lsn).Select(s => (s.Volume, s.Lsn)).ToList();
    }

    /// <summary>Forgets finished and abandoned transfers, so their snapshots stop holding dead blocks alive.</summary>
    private void PruneResyncSources()
    {
        var now = DateTime.UtcNow;
        lock (_resyncLock)
            foreach (var (id, s) in _sources.ToList())
                if (now - s.LastUse > (s.Complete ? ResyncSourceDone : ResyncSourceIdle)) _sources.Remove(id);
    }

    /// <summary>Indexes a resync holds apart from the volumes: staged copies (receiver) and sending snapshots (sender).</summary>
    internal List<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> Indexes()
    {
        PruneResyncSources();
        var list = new List<(Id160, ExtentIndex, VolumeState)>();
        lock (_resyncLock)
        {
            foreach (var st in _staging.Values) list.Add((st.Volume, st.Index, st.Owner));
            foreach (var s in _sources.Values) list.Add((s.Volume.BaseId, s.Snapshot, s.Volume));
        }
        return list;
    }

    /// <summary>The indexes of the copies being received (scrub reads them as staged, not as a volume's).</summary>
    internal HashSet<ExtentIndex> StagedIndexes()
    {
        var staged = new HashSet<ExtentIndex>(ReferenceEqualityComparer.Instance);
        lock (_resyncLock)
            foreach (var st in _staging.Values) staged.Add(st.Index);
        return staged;
    }

    /// <summary>The stand-in owner of a staged copy of a volume not held yet (compaction reads through it).</summary>
    internal VolumeState StagingOwner(Id160 volume)
    {
        lock (_resyncLock)
            foreach (var st in _staging.Values)
                if (st.Volume == volume) return st.Owner;
        throw new VolumeNotFoundException(volume);
    }

    // ---------------- receiver ----------------

    /// <summary>
    /// Applies one piece of a full resync (as <see cref="ReadAsync"/> returned it): every entry is verified (CRCs,
    /// digest, transfer, lsn) and staged apart from the volume; the commit entry checks the totals and digest of all the
    /// pieces and then, durably and in one entry, makes the staged copy the volume at the transfer's lsn (replacing an
    /// older copy held here). A bad piece is refused with <see cref="ResyncRefusedException"/>: the transfer is abandoned
    /// and the volume, if held, stays as it was. A volume held here at or beyond the transfer's lsn is refused too.
    /// </summary>
    public Task<ResyncProgress> ApplyAsync(ReadOnlyMemory<byte> piece, CancellationToken ct = default) =>
        ApplyAsync(piece, replaceAhead: false, ct);

    /// <summary>
    /// <see cref="ApplyAsync(ReadOnlyMemory{byte}, CancellationToken)"/>; with <paramref name="replaceAhead"/> a
    /// copy held here at or beyond the transfer's lsn is replaced too (its holder kept it as a branch first: it is on
    /// another chain than the primary's).
    /// </summary>
    public async Task<ResyncProgress> ApplyAsync(ReadOnlyMemory<byte> piece, bool replaceAhead, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var pending = new List<Task<AppendResult>>();
        StagedResync? st = null;
        long entries = 0;
        try
        {
            for (var at = 0; at < piece.Length;)
            {
                ct.ThrowIfCancellationRequested();
                var rest = piece.Span[at..];
                if (!EntryHeader.TryParse(rest, out var h, out var perr)) throw Refuse(st, $"resync entry {entries}: {perr}");
                if (h.Kind is not (EntryKind.ResyncData or EntryKind.ResyncCommit))
                    throw Refuse(st, $"resync entry {entries}: a {h.Kind} entry is not part of a resync");
                if (rest.Length < h.TotalBytes) throw Refuse(st, $"resync entry {entries}: the piece ends inside the entry");
                if (h.BlockCount > _store.MaxBlocksPerEntry)
                    throw Refuse(st, $"resync entry {entries}: {h.BlockCount} blocks do not fit this log's segments (at most {_store.MaxBlocksPerEntry}); ask for smaller entries");
                var entry = rest[..h.TotalBytes];
                if (EntryCodec.Verify(entry, out _) is { } bad) throw Refuse(st, $"resync entry {entries} (block {h.FirstBlock}): {bad}");
                st = StagingFor(h, st, replaceAhead);
                if (h.Kind == EntryKind.ResyncData)
                {
                    st.Count(h.FirstBlock, h.BlockCount, h.StoredCount, h.Digest);
                    st.LastUse = DateTime.UtcNow;
                    var buf = EntryCodec.Allocate(h.StoredCount);
                    entry.CopyTo(buf.Span);
                    var staged = st;
                    var item = new EntryItem(buf, null, EntryKind.ResyncData, h.Lsn, Id160.Zero, 0, durable: false)
                    {
                        AfterWrite = w => StageIndex(staged, w.Buffer.Span, w.DeviceOffset / BlockSize),
                    };
                    _store.Appender.Enqueue(item);
                    pending.Add(item.Done.Task);
                }
                else
                {
                    if (at + h.TotalBytes != piece.Length) throw Refuse(st, "the resync commit is not the last entry of its piece");
                    var commit = piece.Slice(at, h.TotalBytes);
                    await Task.WhenAll(pending).ConfigureAwait(false);
                    return await CommitResyncAsync(st, commit, h, entries + 1, piece.Length).ConfigureAwait(false);
                }
                at += h.TotalBytes;
                entries++;
            }
            await Task.WhenAll(pending).ConfigureAwait(false);
            return new ResyncProgress(st?.Volume ?? Id160.Zero, st?.Transfer ?? Id160.Zero, entries, piece.Length, false, st?.Lsn ?? 0, Id160.Zero);
        }
        catch (Exception ex) when (ex is not ResyncRefusedException && st is not null)
        {
            Abort(st.Transfer);
            throw;
        }
    }

    /// <summary>Abandons a transfer being received: its staged pieces become dead space, the volume stays as it was.</summary>
    public void Abort(Id160 transfer)
    {
        bool removed;
        lock (_resyncLock) removed = _staging.Remove(transfer);
        if (removed) _options.Log?.Invoke($"resync transfer {transfer} abandoned; the staged pieces are dead space");
    }

    private ResyncRefusedException Refuse(StagedResync? st, string reason)
    {
        if (st is not null) Abort(st.Transfer);
        return new ResyncRefusedException(reason);
    }

    /// <summary>The staging of the entry's transfer, begun at its first entry; the entry must name the same volume and lsn.</summary>
    private StagedResync StagingFor(EntryHeader h, StagedResync? current, bool replaceAhead)
    {
        var transfer = h.Parent;
        lock (_resyncLock)
        {
            if (_staging.TryGetValue(transfer, out var st))
            {
                if (st.Volume != h.Volume || st.Lsn != h.Lsn)
                    throw Refuse(st, $"resync transfer {transfer}: an entry names volume {h.Volume} lsn {h.Lsn}, not {st.Volume} lsn {st.Lsn}");
                return st;
            }
            if (current is not null)
                throw Refuse(current, $"resync transfer {current.Transfer}: an entry of another transfer {transfer} is mixed in");
            if (!replaceAhead && _store.VolumeStates.TryGetValue(h.Volume, out var held) && held.Committed)
                lock (held.IndexLock)
                    if (held.Lsn >= h.Lsn)
                        throw new ResyncRefusedException($"volume {h.Volume} is held here at lsn {held.Lsn}, not behind the resync's lsn {h.Lsn}");
            st = new StagedResync(transfer, h.Volume, h.Lsn);
            _staging[transfer] = st;
            _options.Log?.Invoke($"volume {h.Volume}: receiving a full resync as of lsn {h.Lsn} (transfer {transfer})");
            return st;
        }
    }

    private async Task<ResyncProgress> CommitResyncAsync(StagedResync st, ReadOnlyMemory<byte> entry, EntryHeader h, long entries, long bytes)
    {
        var manifest = h.StoredCount == 1 && h.BlockCount == 1 && h.FirstBlock == 0
            ? ResyncManifest.Decode(entry.Span.Slice(EntryHeader.Size * h.MetaSectors, BlockSize))
            : null;
        if (manifest is null) throw Refuse(st, $"resync transfer {st.Transfer}: the commit's manifest is malformed");
        if (st.Check(manifest) is { } err) throw Refuse(st, err);
        // The entries after L are admitted as next views of the manifest's view (AdmitChainedLocked): view 0 is the
        // base id's, any later view a view-change entry's version.
        if ((manifest.ViewNumber == 0) != (manifest.View == st.Volume))
            throw Refuse(st, $"resync transfer {st.Transfer}: the commit names view {manifest.ViewNumber} with view id {manifest.View}, which do not agree (view 0 is the volume id's)");
        if (manifest.BaseHeldUntilLsn is > 0 and var until && until < h.Lsn)
            throw Refuse(st, $"resync transfer {st.Transfer}: the commit holds the history base until lsn {until}, before its own lsn {h.Lsn}");
        if (_store.VolumeStates.TryGetValue(st.Volume, out var held) && held.Committed)
        {
            // The old copy's chain is over here: a secret for it must not make the installed copy look writable.
            using (var chain = held.LockChain())
            {
                // A copy that this host's writer owns is not replaced under it (it must step down first).
                if (_store.Ownership.ClaimRefusal(chain, null) is { } claimed) throw Refuse(st, claimed.Message);
                held.Secret = null;
            }
            if (_store.Keys.Get(st.Volume) is not null) _store.Keys.Remove(st.Volume);
        }
        var buf = EntryCodec.Allocate(1);
        entry.Span.CopyTo(buf.Span);
        var item = new EntryItem(buf, null, EntryKind.ResyncCommit, h.Lsn, h.Version, 0, durable: true)
        {
            AfterWrite = w => InstallResync(st, manifest, h, w.DeviceOffset / BlockSize),
        };
        _store.Appender.Enqueue(item);
        try { await item.Done.Task.ConfigureAwait(false); }
        catch { Abort(st.Transfer); throw; }
        _options.Log?.Invoke($"volume {st.Volume}: full resync installed at lsn {h.Lsn} ({st.StoredBlocks * BlockSize} bytes of data)");
        return new ResyncProgress(st.Volume, st.Transfer, entries, bytes, true, h.Lsn, h.Version);
    }

    private static void StageIndex(StagedResync st, ReadOnlySpan<byte> entry, long entryBlock)
    {
        if (!EntryHeader.TryParse(entry, out var h, out var err)) throw new InvalidOperationException($"a verified entry failed to parse: {err}");
        lock (st.Owner.IndexLock) LogStore.IndexEntry(st.Index, entry, h, entryBlock);
    }

    /// <summary>The commit is in the log: the staged copy becomes the volume, at the transfer's lsn (writer thread or replay).</summary>
    private void InstallResync(StagedResync st, ResyncManifest m, EntryHeader h, long commitBlock)
    {
        var v = new VolumeState(st.Volume, m.SizeBytes, m.Mode, m.Replicas, m.BranchedFrom, null, st.Index)
        {
            Lsns = LsnTable.Seeded(h.Lsn, commitBlock, h.Version),
            OldestStreamableLsn = h.Lsn + 1,
            Committed = true,
            ViewNumber = m.ViewNumber,
            View = m.View,
            Name = m.Name,
            TrashedAtUnixMs = m.TrashedAtUnixMs,
        };
        v.ResetHeads(h.Lsn, h.Version, m.HeadParent, m.HeadDigest);
        // As of the sender's history base: the versions from here on stay as they do there (the protections come with
        // the entries after it, held until they have applied).
        if (m.BaseHeldUntilLsn > 0)
            v.History = new HistoryBase(h.Lsn, h.Version, st.Index.Snapshot(), m.SizeBytes)
            {
                Chain = new BaseChainState(m.ViewNumber, m.View, m.Replicas, m.TrashedAtUnixMs, m.HeadParent, m.HeadDigest),
                HeldUntilLsn = m.BaseHeldUntilLsn,
            };
        lock (st.Owner.IndexLock)
        {
            _store.VolumeStates[st.Volume] = v;
            lock (_resyncLock) _staging.Remove(st.Transfer);
        }
        _store.Checkpoints.NoteChange();
    }

    // ---------------- replay ----------------

    internal string? ReplayData(ReadOnlySpan<byte> span, EntryHeader h, long block)
    {
        StagedResync? st;
        lock (_resyncLock)
        {
            if (!_staging.TryGetValue(h.Parent, out st)) _staging[h.Parent] = st = new StagedResync(h.Parent, h.Volume, h.Lsn);
        }
        if (st.Volume != h.Volume || st.Lsn != h.Lsn) return $"resync transfer {h.Parent}: an entry names another volume or lsn";
        st.Count(h.FirstBlock, h.BlockCount, h.StoredCount, h.Digest);
        lock (st.Owner.IndexLock) LogStore.IndexEntry(st.Index, span, h, block);
        return null;
    }

    internal string? ReplayCommit(ReadOnlySpan<byte> span, EntryHeader h, long block)
    {
        StagedResync? st;
        lock (_resyncLock) _staging.TryGetValue(h.Parent, out st);
        st ??= new StagedResync(h.Parent, h.Volume, h.Lsn);
        var m = h.StoredCount == 1 ? ResyncManifest.Decode(span.Slice(EntryHeader.Size * h.MetaSectors, BlockSize)) : null;
        if (m is null) return $"resync transfer {h.Parent}: the commit's manifest is malformed";
        if (st.Volume != h.Volume || st.Lsn != h.Lsn) return $"resync transfer {h.Parent}: the commit names another volume or lsn";
        if (st.Check(m) is { } err) return err;
        InstallResync(st, m, h, block);
        return null;
    }

    /// <summary>After replay: a transfer whose commit never reached the log is abandoned (the volume stays as it was).</summary>
    internal void DropUncommitted()
    {
        lock (_resyncLock)
        {
            foreach (var st in _staging.Values)
                _options.Log?.Invoke($"volume {st.Volume}: resync transfer {st.Transfer} was never committed; its {st.Pieces} staged entries are dead space");
            _staging.Clear();
        }
    }
}
