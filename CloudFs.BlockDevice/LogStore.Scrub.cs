// Scrubbing: read every live stored block of the log once, in large sequential reads, and check it against the CRC in
// its entry's header; what fails goes into the damage maps of the volumes that read it (a repair or a write clears it).
using System.Diagnostics;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Scrub;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>Largest device read of a scrub: long enough for sequential bandwidth, and a whole entry (1 MiB + table) fits.</summary>
    internal const int ScrubChunkBytes = 4 << 20;
    /// <summary>Dead space up to this long between live entries is read through rather than skipped.</summary>
    internal const int ScrubGapBytes = 256 << 10;

    public ScrubStats ScrubStats { get; } = new();

    /// <summary>
    /// Reads every live stored block (of one volume, or of the whole log: every index, branch parents and staged
    /// resyncs included) and checks it against its entry's CRC. Each bad block is marked in the damage map of every
    /// volume that reads it from there (reads of it then fail, with the reason, until a write or a repair); the result
    /// lists them. Counted as a reader chunk by chunk, so compaction frees nothing under it and goes on meanwhile; what
    /// compaction moved away is skipped (it verified those blocks as it copied them). Cancellable between chunks.
    /// </summary>
    public async Task<ScrubResult> ScrubAsync(ScrubOptions options, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(options);
        if (options.BytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(options), "the scrub rate must not be negative");
        if (options.Volume is { } only) Volume(only);
        var clock = Stopwatch.StartNew();
        ScrubStats.Started();
        var complete = false;
        try
        {
            // What is live, as one picture taken on the writer thread (no index moves meanwhile); read from snapshots off it.
            List<(ExtentIndex Index, bool Staged)> indexes = null!;
            ulong[] seqs = null!;
            var barrier = new BarrierItem(_ =>
            {
                indexes = ScrubIndexes(options.Volume);
                seqs = _segments.Copy().Seqs;
            });
            _appender.Enqueue(barrier);
            await barrier.Done.Task.ConfigureAwait(false);
            var plan = await Task.Run(() => ScrubPlan.Build(_layout, LiveExtents(indexes), ScrubChunkBytes, ScrubGapBytes), ct).ConfigureAwait(false);
            var result = await Task.Run(() => VerifyAsync(plan, seqs, options.BytesPerSecond, clock, ct), ct).ConfigureAwait(false);
            complete = true;
            return result;
        }
        finally { ScrubStats.Ended(complete); }
    }

    /// <summary>On the writer thread: snapshots of the indexes a scrub reads (one volume's chain, or every live one).</summary>
    private List<(ExtentIndex Index, bool Staged)> ScrubIndexes(Id160? volume)
    {
        var list = new List<(ExtentIndex, bool)>();
        if (volume is { } only)
        {
            var v = Volume(only);
            lock (v.IndexLock)
                for (var x = v.Index; x is not null; x = x.Parent) list.Add((x.Snapshot(), false));
            return list;
        }
        var staged = Resync.StagedIndexes();
        foreach (var (_, index, _) in AllIndexes()) list.Add((index.Snapshot(), staged.Contains(index)));
        return list;
    }

    private static IEnumerable<(Extent, bool)> LiveExtents(List<(ExtentIndex Index, bool Staged)> indexes)
    {
        foreach (var (index, staged) in indexes)
            foreach (var e in index.Enumerate())
                if (!e.IsZero) yield return (e, staged);
    }

    /// <summary>What one chunk of a scrub read and found.</summary>
    private sealed record ChunkResult(long Verified, long Bad, long Moved, long Read, List<ScrubFinding> Findings);

    private async Task<ScrubResult> VerifyAsync(ScrubPlan plan, ulong[] seqs, long bytesPerSecond, Stopwatch clock, CancellationToken ct)
    {
        // Unthrottled, several chunks are read (and checked) at once: a device with queues of its own reads them in
        // parallel, as fio does with an I/O depth above one. Throttled, one at a time is plenty.
        var depth = bytesPerSecond > 0 ? 1 : Math.Max(1, ScrubReadsInFlight);
        var buffers = new AlignedBuffer[depth];
        var pending = new Queue<Task<ChunkResult>>();
        var findings = new List<ScrubFinding>();
        long verified = 0, read = 0, bad = 0, moved = 0;
        void Add(ChunkResult r)
        {
            // Counted as it goes: a background pass at a few MiB/s takes hours, and /metrics shows its progress.
            ScrubStats.Verified(r.Verified * BlockSize);
            verified += r.Verified;
            bad += r.Bad;
            moved += r.Moved;
            read += r.Read;
            findings.AddRange(r.Findings);
        }
        try
        {
            for (var i = 0; i < depth; i++) buffers[i] = new AlignedBuffer(ScrubChunkBytes + Page);
            for (var c = 0; c < plan.Chunks.Count; c++)
            {
                ct.ThrowIfCancellationRequested();
                // The chunk depth places back used the same buffer: it is done before this one starts.
                if (pending.Count == depth)
                {
                    Add(await pending.Dequeue().ConfigureAwait(false));
                    await PaceAsync(bytesPerSecond, read, clock, ct).ConfigureAwait(false);
                }
                var chunk = plan.Chunks[c];
                var buffer = buffers[c % depth];
                pending.Enqueue(Task.Run(() => VerifyChunk(plan, chunk, buffer, seqs), CancellationToken.None));
            }
            while (pending.Count > 0) Add(await pending.Dequeue().ConfigureAwait(false));
        }
        finally
        {
            // Never free a buffer a read still fills (after a cancellation or a failed chunk).
            foreach (var t in pending)
                try { await t.ConfigureAwait(false); } catch (Exception) { }
            foreach (var b in buffers) ((IDisposable?)b)?.Dispose();
        }
        return new ScrubResult(verified * BlockSize, read, bad, moved, findings, clock.Elapsed);
    }

    /// <summary>Chunks a scrub reads at once when it is not throttled (benchmarks compare other depths).</summary>
    internal int ScrubReadsInFlight { get; set; } = 4;

    private ChunkResult VerifyChunk(ScrubPlan plan, ScrubChunk chunk, AlignedBuffer buffer, ulong[] seqs)
    {
        // Counted as a reader while the chunk is read: a segment compaction reclaims after this point is not freed
        // under the read, and one it reclaimed before (its blocks now live elsewhere) is skipped.
        var slot = EnterRead();
        bool current;
        try
        {
            current = _segments.StateOf(chunk.Segment) is SegmentState.Used or SegmentState.Current && _segments.SeqOf(chunk.Segment) == seqs[chunk.Segment];
            if (current) _device.Read(buffer.Span[..chunk.Length], chunk.Offset);
        }
        finally { ExitRead(slot); }
        var findings = new List<ScrubFinding>();
        long verified = 0, bad = 0, moved = 0;
        for (var i = chunk.First; i < chunk.First + chunk.Count; i++)
        {
            var entry = plan.Entries[i];
            if (!current)
            {
                foreach (var s in entry.Spans) moved += s.Count;
                continue;
            }
            var (v, b) = VerifyEntry(entry, buffer.Span[..chunk.Length], chunk.Offset, seqs[chunk.Segment], findings);
            verified += v;
            bad += b;
        }
        return new ChunkResult(verified, bad, moved, current ? chunk.Length : 0, findings);
    }

    /// <summary>
    /// Checks one entry's live blocks inside a chunk read at <paramref name="chunkOffset"/>: its header (parse, CRC,
    /// segment seq), then each live block against the header's CRC. Returns the blocks checked and the blocks found bad.
    /// </summary>
    private (long Verified, long Bad) VerifyEntry(ScrubEntry entry, ReadOnlySpan<byte> chunk, long chunkOffset, ulong seq, List<ScrubFinding> findings)
    {
        var at = (int)(entry.EntryBlock * BlockSize - chunkOffset);
        var s = chunk[at..];
        var headerFault = HeaderFault(s, entry.EntryBlock, seq, out var h);
        if (headerFault is not null)
        {
            // One flipped bit is corrected (as recovery and reads do): the blocks are checked against the header as written.
            var copy = s[..Math.Min(s.Length, EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks)))].ToArray();
            var bit = OneBitCorrection.TryCorrectEntryMeta(copy, copy.Length);
            if (bit >= 0 && HeaderFault(copy, entry.EntryBlock, seq, out h) is null)
            {
                ReportError($"scrub: the entry header at log block {entry.EntryBlock} has one flipped bit (bit {bit}) on the device; corrected where it is read");
                s = copy;
                headerFault = null;
            }
        }
        long verified = 0, bad = 0;
        foreach (var span in entry.Spans)
        {
            verified += span.Count;
            if (headerFault is not null)
            {
                bad += Bad(span, 0, span.Count, headerFault, findings);
                continue;
            }
            var dataStart = entry.EntryBlock + h.MetaSectors;
            var badFrom = -1;
            for (var i = 0; i <= span.Count; i++)
            {
                var good = i == span.Count;
                if (!good)
                {
                    var k = span.LogBlock + i - dataStart;
                    var off = (int)((span.LogBlock + i) * BlockSize - chunkOffset);
                    good = k >= 0 && k < h.StoredCount && Crc32C.Compute(chunk.Slice(off, BlockSize)) == EntryCodec.GetBlockCrc(s, (int)k);
                }
                if (!good && badFrom < 0) badFrom = i;
                if (good && badFrom >= 0)
                {
                    bad += Bad(span, badFrom, i - badFrom, BadBlocksReason(span.LogBlock + badFrom, i - badFrom, entry.EntryBlock, s), findings);
                    badFrom = -1;
                }
            }
        }
        return (verified, bad);
    }

    /// <summary>Why the entry header at the start of <paramref name="s"/> cannot be used (null when it verifies and names <paramref name="seq"/>).</summary>
    private static string? HeaderFault(ReadOnlySpan<byte> s, long entryBlock, ulong seq, out EntryHeader h)
    {
        if (!EntryHeader.TryParse(s, out h, out var error)) return $"the entry header at log block {entryBlock} is unreadable: {error}";
        if (EntryHeader.Size * h.MetaSectors > s.Length || !EntryCodec.HeaderCrcMatches(s[..(EntryHeader.Size * h.MetaSectors)]))
            return $"the entry header at log block {entryBlock} fails its checksum";
        if (h.SegmentSeq != seq) return $"the entry header at log block {entryBlock} names segment seq {h.SegmentSeq}, not its segment's {seq}";
        return null;
    }

    /// <summary>
    /// Blocks [at, at+count) of a live span failed: marked in the damage maps of the volumes that read them; a staged
    /// resync's copy is only reported. Returns how many blocks count as bad (none when they were moved or overwritten
    /// since the scrub's picture was taken: nothing reads them any more).
    /// </summary>
    private long Bad(LiveSpan span, int at, int count, string reason, List<ScrubFinding> findings)
    {
        var marked = MarkDamaged(span.Start + at, count, span.LogBlock + at, reason);
        if (marked.Count == 0)
        {
            if (!span.Staged) return 0;
            _options.Log?.Invoke($"a staged resync copy of logical blocks {span.Start + at}..{span.Start + at + count - 1}: {reason}");
            marked.Add(new ScrubFinding(Id160.Zero, (span.Start + at) * BlockSize, (long)count * BlockSize, reason, Staged: true));
        }
        findings.AddRange(marked);
        ScrubStats.Bad(count);
        return count;
    }

    /// <summary>Waits while having read <paramref name="read"/> bytes is ahead of <paramref name="bytesPerSecond"/> (0: never waits).</summary>
    private static Task PaceAsync(long bytesPerSecond, long read, Stopwatch clock, CancellationToken ct)
    {
        if (bytesPerSecond <= 0) return Task.CompletedTask;
        var ahead = TimeSpan.FromSeconds((double)read / bytesPerSecond) - clock.Elapsed;
        return ahead > TimeSpan.FromMilliseconds(1) ? Task.Delay(ahead, ct) : Task.CompletedTask;
    }
}
