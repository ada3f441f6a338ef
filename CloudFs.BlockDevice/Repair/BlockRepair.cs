// Repair from replicas, in three steps: this host lists the blocks of a range that fail their checksums here with its
// own CRCs (PlanRepairAsync); a replica reads the same range (ReadForRepairAsync); this host accepts the replica's bytes
// only where they are the same version of the block and match its own CRC, and writes them as a Relocation entry flagged
// as a repair, which moves every index off the bad place and clears the damage (ApplyRepairAsync).
//
// Blocks whose entry header is bad and that no lsn of the volume names (a relocated, resynced or restored copy, a
// branch's view of its source's entry) have their checksums and lsn only in that header, so nothing here can check a
// replica's bytes of them. What this host still has is its own bytes of each block (only the header went bad, as a
// rule), unverified. A replica's verified copy that equals them byte for byte confirms them (ApplyRepairAsync): two
// hosts' independent copies agree. Where they differ (the data went bad here too), the verified copies of a majority
// of the volume's replica set, each of the block as of this host's head, must agree (ApplyAgreedRepairAsync).
using System.Buffers.Binary;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Repair;

/// <summary>
/// Restoring bad stored blocks of a volume from its replicas' copies (<see cref="LogStore.Repair"/>). It owns no state:
/// what it plans from and writes to is the store's (the damage maps, the indexes through Relocation entries).
/// </summary>
public sealed class BlockRepair
{
    /// <summary>Most bytes one repair step plans, fetches and writes (one message between hosts).</summary>
    public const int MaxRepairBytes = 1 << 20;

    private const int BlockSize = LogStore.BlockSize;

    private readonly LogStore _store;
    private readonly LogStoreOptions _options;

    internal BlockRepair(LogStore store, LogStoreOptions options)
    {
        _store = store;
        _options = options;
    }

    /// <summary>
    /// Reads [offset, offset+length) of <paramref name="volume"/> here (at most <see cref="MaxRepairBytes"/>) and lists
    /// the stored blocks that fail their checksums, with this host's CRC of each, and its head. What fails is marked in
    /// the damage maps as a read would. Blocks whose entry header fails are listed with the entry's lsn, when the volume's lsn
    /// table names it (a replica's whole entry can restore them, <see cref="EntryRestoration.RestoreBadEntryAsync"/>), else as unchecked
    /// blocks with this host's own bytes of them (a replica's copy can only confirm those, or a majority agree:
    /// <see cref="ApplyAgreedRepairAsync"/>). The damage map is not consulted: this looks at the blocks themselves.
    /// </summary>
    public Task<RepairPlan> PlanRepairAsync(Id160 volume, long offset, long length, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        LogStore.CheckRange(vol, offset, length);
        if (length > MaxRepairBytes) throw new InvalidRangeException($"a repair step covers at most {MaxRepairBytes} bytes, not {length}");
        return Task.Run(() =>
        {
            var extents = new List<Extent>();
            long head;
            Id160 version;
            var blocks = new List<RepairBlock>();
            var unrepairable = new List<DamagedRange>();
            var badEntries = new List<BadEntry>();
            // A reader from the lookup to the end of its reads: the places it finds are not freed meanwhile.
            var slot = _store.EnterRead();
            try
            {
                lock (vol.IndexLock)
                {
                    vol.Index.Lookup(offset / BlockSize, length / BlockSize, extents);
                    head = vol.Lsn;
                    version = vol.Version;
                }
                var scratch = new byte[length];
                var bad = new List<LogStore.BadRun>();
                foreach (var e in extents)
                {
                    ct.ThrowIfCancellationRequested();
                    if (e.IsZero) continue;
                    byte[] meta;
                    try { meta = _store.GetEntryMeta(vol, e); }
                    catch (DataCorruptionException ex)
                    {
                        _store.Damage.Mark(e.Start, e.Count, e.LogBlock, ex.Detail);
                        var range = new DamagedRange(e.Start * BlockSize, (long)e.Count * BlockSize, ex.Detail);
                        if (badEntries.Exists(b => b.EntryBlock == e.EntryBlock)) continue;
                        var entryLsn = _store.Restoration.LsnOfEntry(vol, e.EntryBlock);
                        if (entryLsn > 0) badEntries.Add(new BadEntry(e.EntryBlock, entryLsn, range));
                        else
                        {
                            // No lsn names it (a relocated, resynced or restored copy, a branch's view of its source's
                            // entry): only this host's own bytes are left, for a replica's copy to confirm.
                            var own = new byte[(long)e.Count * BlockSize];
                            _store.ReadStoredUnverified(e, own);
                            for (var i = 0; i < e.Count; i++)
                                blocks.Add(new RepairBlock(e.Start + i, e.LogBlock + i, e.EntryBlock, 0, 0, own.AsMemory(i * BlockSize, BlockSize)));
                        }
                        continue;
                    }
                    bad.Clear();
                    _store.ReadRunChecked(vol, e, scratch.AsSpan((int)((e.Start * BlockSize) - offset), e.Count * BlockSize), bad);
                    if (bad.Count == 0) continue;
                    int stored = BinaryPrimitives.ReadUInt16LittleEndian(meta.AsSpan(EntryHeader.OffStoredCount));
                    var dataStart = e.EntryBlock + 1 + EntryHeader.TableSectorsFor(stored);
                    var lsn = BinaryPrimitives.ReadInt64LittleEndian(meta.AsSpan(EntryHeader.OffLsn));
                    foreach (var b in bad)
                    {
                        _store.Damage.Mark(e.Start + b.At, b.Count, e.LogBlock + b.At, b.Reason);
                        for (var i = b.At; i < b.At + b.Count; i++)
                        {
                            var k = e.LogBlock + i - dataStart;
                            if (k < 0 || k >= stored)
                                unrepairable.Add(new DamagedRange((e.Start + i) * BlockSize, BlockSize, $"log block {e.LogBlock + i} lies outside the stored blocks of its entry at log block {e.EntryBlock}"));
                            else blocks.Add(new RepairBlock(e.Start + i, e.LogBlock + i, e.EntryBlock, EntryCodec.GetBlockCrc(meta, (int)k), lsn));
                        }
                    }
                }
            }
            finally { _store.ExitRead(slot); }
            return new RepairPlan(volume, head, version, blocks, unrepairable, badEntries);
        }, ct);
    }

    /// <summary>
    /// A replica's side of a repair: [offset, offset+length) of <paramref name="volume"/> as this host reads it now
    /// (verified against its own CRCs: a range damaged here throws <see cref="DataCorruptionException"/>), with its
    /// head, whether its chain holds the asker's head (<paramref name="askerLsn"/>, <paramref name="askerVersion"/>),
    /// and the newest lsn any block of the range was written at here (0 for holes).
    /// </summary>
    public async Task<ReplicaBlocks> ReadForRepairAsync(Id160 volume, long offset, int length, long askerLsn, Id160 askerVersion, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        LogStore.CheckRange(vol, offset, length);
        if (length <= 0 || length > MaxRepairBytes) throw new InvalidRangeException($"a repair step covers 1..{MaxRepairBytes} bytes, not {length}");
        var holds = askerLsn >= 1 && _store.HoldsVersionAt(volume, askerLsn, askerVersion);
        return await Task.Run(() =>
        {
            var extents = new List<Extent>();
            long head;
            Id160 version;
            var slot = _store.EnterRead();
            try
            {
                lock (vol.IndexLock)
                {
                    if (vol.Damage.Count > 0 && vol.Damage.FirstOverlap(offset, length) is { } d)
                        throw new DataCorruptionException(volume, d.Offset, d.Length, d.Reason);
                    vol.Index.Lookup(offset / BlockSize, length / BlockSize, extents);
                    head = vol.Lsn;
                    version = vol.Version;
                }
                var data = new byte[length];
                _store.Fill(vol, offset / BlockSize, extents.ToArray(), data);
                long newest = 0;
                foreach (var e in extents)
                {
                    // Zeros never match a stored block's CRC at the asker (zero blocks are never stored): no lsn needed.
                    if (e.IsZero) continue;
                    var meta = _store.GetEntryMeta(vol, e);
                    newest = Math.Max(newest, BinaryPrimitives.ReadInt64LittleEndian(meta.AsSpan(EntryHeader.OffLsn)));
                }
                // The asker's head checked before the lookup may have been passed since, never lost: still held.
                return new ReplicaBlocks(head, version, holds, newest, data);
            }
            finally { _store.ExitRead(slot); }
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Restores the blocks of <paramref name="plan"/> from <paramref name="replica"/>'s copy. The copy is used only where
    /// it is the same version of the block as this host's: both chains agree up to a common lsn C (the lower of the two
    /// heads, which the other side holds), and neither host's copy of the block was written after C; and only where its
    /// bytes match this host's own CRC of the block (a replica's bytes are never taken on trust). Accepted blocks are
    /// appended in Relocation entries flagged as repairs; once written, every index that still points at the bad place
    /// moves to them and the damage they cover is cleared. Returns what was restored and what was refused.
    /// </summary>
    public async Task<RepairOutcome> ApplyRepairAsync(RepairPlan plan, ReplicaBlocks replica, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(replica);
        var vol = _store.Volume(plan.Volume);
        if (plan.Blocks.Count == 0) return new RepairOutcome(0, 0, null);
        RepairOutcome RefuseAll(string why) => new(0, plan.Blocks.Count, why);
        if (replica.Data.Length != plan.FetchLength)
            return RefuseAll($"the replica sent {replica.Data.Length} bytes for a range of {plan.FetchLength}");
        long common;
        if (replica.HeadLsn >= plan.HeadLsn)
        {
            if (!replica.HoldsAskerHead) return RefuseAll($"the replica's chain does not hold this host's head (lsn {plan.HeadLsn}, version {plan.HeadVersion})");
            common = plan.HeadLsn;
        }
        else
        {
            if (replica.HeadLsn < 1 || !_store.HoldsVersionAt(plan.Volume, replica.HeadLsn, replica.HeadVersion))
                return RefuseAll($"the replica's head (lsn {replica.HeadLsn}, version {replica.HeadVersion}) is not on this host's chain");
            common = replica.HeadLsn;
        }
        if (replica.NewestSourceLsn > common)
            return RefuseAll($"the replica's copy of the range was written at lsn {replica.NewestSourceLsn}, after lsn {common}, the newest version both hosts hold");

        long refused = 0;
        string? refusal = null;
        var good = new List<RepairBlock>();
        foreach (var b in plan.Blocks)
        {
            ct.ThrowIfCancellationRequested();
            var bytes = replica.Data.Span.Slice((int)(b.Block * BlockSize - plan.FetchOffset), BlockSize);
            if (b.Unchecked)
            {
                // Nothing here checks the replica's bytes; they can only confirm this host's own (two hosts' copies agree).
                if (bytes.SequenceEqual(b.Own.Span)) good.Add(b);
                else
                {
                    refused++;
                    refusal ??= $"the replica's copy of block {b.Block} does not confirm this host's own bytes of it (log block {b.LogBlock}, whose entry header is bad here and named by no lsn: nothing here checks them); a majority of the replica set must agree on it instead";
                }
            }
            else if (b.SourceLsn > common)
            {
                refused++;
                refusal ??= $"block {b.Block} was written here at lsn {b.SourceLsn}, after the replica's head (lsn {common})";
            }
            else if (Crc32C.Compute(bytes) != b.Crc)
            {
                refused++;
                refusal ??= $"the replica's copy of block {b.Block} does not match this host's checksum of it (log block {b.LogBlock})";
            }
            else good.Add(b);
        }
        var repaired = await WriteRepairedAsync(vol, plan, good.Select(b => (b, replica.Data.Slice((int)(b.Block * BlockSize - plan.FetchOffset), BlockSize))).ToList())
            .ConfigureAwait(false);
        if (repaired > 0)
            _options.Log?.Invoke($"volume {plan.Volume}: {repaired} block(s) restored from a replica, checked against this host's checksums or confirming its own bytes");
        return new RepairOutcome(repaired, refused, refusal);
    }

    /// <summary>
    /// Appends the accepted blocks (in logical order, with their bytes) as Relocation entries flagged as repairs, one per
    /// run of blocks consecutive here in both the volume and the log, of one entry; returns how many were written. A block
    /// whose entry header is bad (<see cref="RepairBlock.Unchecked"/>) carries the plan's head lsn: the lsn of its write
    /// was in that header, and no write of it here is newer than the head, so a later repair judges it no less strictly.
    /// </summary>
    private async Task<long> WriteRepairedAsync(VolumeState vol, RepairPlan plan, List<(RepairBlock Block, ReadOnlyMemory<byte> Bytes)> good)
    {
        long repaired = 0;
        for (var i = 0; i < good.Count;)
        {
            var j = i + 1;
            while (j < good.Count && j - i < _store.MaxBlocksPerEntry && good[j].Block.Block == good[j - 1].Block.Block + 1
                   && good[j].Block.LogBlock == good[j - 1].Block.LogBlock + 1 && good[j].Block.EntryBlock == good[i].Block.EntryBlock)
                j++;
            var n = j - i;
            var run = new byte[n * BlockSize];
            for (var k = 0; k < n; k++) good[i + k].Bytes.Span.CopyTo(run.AsSpan(k * BlockSize));
            var first = good[i].Block;
            var part = new Extent(first.Block, n, first.LogBlock, first.EntryBlock);
            await _store.RelocateBlocksAsync(vol, plan.Volume, part, 0, n, run, repair: true, first.Unchecked ? Math.Max(1, plan.HeadLsn) : 0).ConfigureAwait(false);
            repaired += n;
            i = j;
        }
        return repaired;
    }


    /// <summary>
    /// Restores the blocks of <paramref name="plan"/> whose entry header is bad and named by no lsn
    /// (<see cref="RepairBlock.Unchecked"/>) where no replica confirmed this host's own bytes: a block is taken where the
    /// verified copies of a majority of the volume's replica set (this host included in the count, not in the vote) are
    /// equal. A copy counts only if it is of the block as of this host's head: its host holds that head and wrote none of
    /// the range after it (this host does not know the lsn of its own write of the block, so the head is the only version
    /// both can name). <paramref name="copies"/>: one per other replica. Returns what was restored and what was refused.
    /// </summary>
    public async Task<RepairOutcome> ApplyAgreedRepairAsync(RepairPlan plan, IReadOnlyList<ReplicaBlocks> copies, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(copies);
        var vol = _store.Volume(plan.Volume);
        var wanted = plan.Blocks.Where(b => b.Unchecked).ToList();
        if (wanted.Count == 0) return new RepairOutcome(0, 0, null);
        int replicas;
        lock (vol.IndexLock) replicas = Math.Max(1, vol.Replicas.Length);
        var majority = replicas / 2 + 1;
        if (copies.Count > replicas - 1)
            throw new ArgumentException($"{copies.Count} copies for a volume with {replicas - 1} other replicas: one copy per other replica", nameof(copies));
        var usable = copies.Where(c => c.Data.Length == plan.FetchLength && c.HeadLsn >= plan.HeadLsn && c.HoldsAskerHead && c.NewestSourceLsn <= plan.HeadLsn).ToList();
        if (usable.Count < majority)
            return new RepairOutcome(0, wanted.Count, $"{usable.Count} replica copies of the block as of this host's head (lsn {plan.HeadLsn}), but a majority of the {replicas} replicas ({majority}) must agree on a block nothing here can check");
        var good = new List<(RepairBlock, ReadOnlyMemory<byte>)>();
        long refused = 0;
        string? refusal = null;
        foreach (var b in wanted)
        {
            ct.ThrowIfCancellationRequested();
            var at = (int)(b.Block * BlockSize - plan.FetchOffset);
            ReadOnlyMemory<byte>? agreed = null;
            foreach (var c in usable)
            {
                var bytes = c.Data.Slice(at, BlockSize);
                if (usable.Count(o => o.Data.Span.Slice(at, BlockSize).SequenceEqual(bytes.Span)) >= majority) { agreed = bytes; break; }
            }
            if (agreed is { } yes) good.Add((b, yes));
            else
            {
                refused++;
                refusal ??= $"the replicas' copies of block {b.Block} (log block {b.LogBlock}, whose entry header is bad here and named by no lsn) do not agree in a majority of the {replicas} replicas";
            }
        }
        var repaired = await WriteRepairedAsync(vol, plan, good).ConfigureAwait(false);
        if (repaired > 0)
            _options.Log?.Invoke($"volume {plan.Volume}: {repaired} block(s) whose entry header is bad here restored from the copies a majority of its replicas agree on");
        return new RepairOutcome(repaired, refused, refusal);
    }
}
