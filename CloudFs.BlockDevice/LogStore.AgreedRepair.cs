// Repairing blocks whose entry header is bad and that no lsn of the volume names (a relocated, resynced or restored copy,
// a branch's view of its source's entry): their checksums and lsn were only in that header, so nothing here can check a
// replica's bytes of them. What this host still has is its own bytes of each block (only the header went bad, as a rule),
// unverified. A replica's verified copy that equals them byte for byte confirms them (LogStore.ApplyRepairAsync): two
// hosts' independent copies agree. Where they differ (the data went bad here too), the verified copies of a majority of
// the volume's replica set, each of the block as of this host's head, must agree (ApplyAgreedRepairAsync).
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>Reads the stored blocks of <paramref name="e"/> from the device as they are, unverified (their entry header,
    /// which held their checksums, is bad): for a replica's copy to confirm.</summary>
    private void ReadOwnBytes(Extent e, Span<byte> dest)
    {
        var buffer = _readPool.Rent((int)Math.Min(e.Count, ReadChunk / BlockSize) * BlockSize + 2 * Page);
        try
        {
            for (var done = 0; done < e.Count;)
            {
                var n = Math.Min(e.Count - done, ReadChunk / BlockSize);
                var byteOff = (e.LogBlock + done) * BlockSize;
                var aligned = byteOff & ~(long)(Page - 1);
                var lead = (int)(byteOff - aligned);
                var total = (lead + n * BlockSize + Page - 1) & ~(Page - 1);
                var span = buffer.Span[..total];
                _device.Read(span, aligned);
                span.Slice(lead, n * BlockSize).CopyTo(dest.Slice(done * BlockSize, n * BlockSize));
                done += n;
            }
        }
        finally { _readPool.Return(buffer); }
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
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(copies);
        var vol = Volume(plan.Volume);
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
