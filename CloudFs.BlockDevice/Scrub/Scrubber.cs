// Reading stored data back to check it: a scrub reads every live stored block of the log once, in large sequential
// reads, and checks it against the CRC in its entry's header (what fails goes into the damage maps of the volumes that
// read it; a repair or a write clears it); a deep verify's digest reads one volume's live content like a client read.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Scrub;

/// <summary>
/// Scrubs and deep-verify digests of one store (<see cref="LogStore.Scrubber"/>). Its own state is its counters; what it
/// reads is the store's (indexes snapshotted at a writer barrier, reads counted against compaction's frees).
/// </summary>
public sealed class Scrubber
{
    /// <summary>Largest device read of a scrub: long enough for sequential bandwidth, and a whole entry (1 MiB + table) fits.</summary>
    internal const int ChunkBytes = 4 << 20;
    /// <summary>Dead space up to this long between live entries is read through rather than skipped.</summary>
    internal const int GapBytes = 256 << 10;

    private const int Page = AlignedBuffer.Alignment;
    private const int BlockSize = LogStore.BlockSize;
    // Largest read of a deep-verify digest (one entry's data).
    private const int DigestChunk = 1 << 20;

    private readonly LogStore _store;
    private readonly LogStoreOptions _options;
    private readonly ILogDevice _device;
    private readonly DeviceHeader _layout;
    private readonly SegmentTable _segments;

    internal Scrubber(LogStore store, LogStoreOptions options, ILogDevice device, DeviceHeader layout, SegmentTable segments)
    {
        _store = store;
        _options = options;
        _device = device;
        _layout = layout;
        _segments = segments;
    }

    /// <summary>Passes run and running, bytes verified, bad blocks found (/metrics).</summary>
    public ScrubStats Stats { get; } = new();

    /// <summary>
    /// Reads every live stored block (of one volume, or of the whole log: every index, branch parents and staged
    /// resyncs included) and checks it against its entry's CRC. Each bad block is marked in the damage map of every
    /// volume that reads it from there (reads of it then fail, with the reason, until a write or a repair); the result
    /// lists them. Counted as a reader chunk by chunk, so compaction frees nothing under it and goes on meanwhile; what
    /// compaction moved away is skipped (it verified those blocks as it copied them). Cancellable between chunks.
    /// </summary>
    public async Task<ScrubResult> ScrubAsync(ScrubOptions options, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(options);
        if (options.BytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(options), "the scrub rate must not be negative");
        if (options.Volume is { } only) _store.Volume(only);
        var clock = Stopwatch.StartNew();
        Stats.Started();
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
            _store.Appender.Enqueue(barrier);
            await barrier.Done.Task.ConfigureAwait(false);
            var plan = await Task.Run(() => ScrubPlan.Build(_layout, LiveExtents(indexes), ChunkBytes, GapBytes), ct).ConfigureAwait(false);
            var result = await Task.Run(() => VerifyAsync(plan, seqs, options.BytesPerSecond, clock, ct), ct).ConfigureAwait(false);
            complete = true;
            return result;
        }
        finally { Stats.Ended(complete); }
    }

    /// <summary>On the writer thread: snapshots of the indexes a scrub reads (one volume's chain, or every live one).</summary>
    private List<(ExtentIndex Index, bool Staged)> ScrubIndexes(Id160? volume)
    {
        var list = new List<(ExtentIndex, bool)>();
        if (volume is { } only)
        {
            var v = _store.Volume(only);
            lock (v.IndexLock)
                for (var x = v.Index; x is not null; x = x.Parent) list.Add((x.Snapshot(), false));
            return list;
        }
        var staged = _store.Resync.StagedIndexes();
        foreach (var (_, index, _) in _store.AllIndexes()) list.Add((index.Snapshot(), staged.Contains(index)));
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
        var depth = bytesPerSecond > 0 ? 1 : Math.Max(1, ReadsInFlight);
        var buffers = new AlignedBuffer[depth];
        var pending = new Queue<Task<ChunkResult>>();
        var findings = new List<ScrubFinding>();
        long verified = 0, read = 0, bad = 0, moved = 0;
        void Add(ChunkResult r)
        {
            // Counted as it goes: a background pass at a few MiB/s takes hours, and /metrics shows its progress.
            Stats.Verified(r.Verified * BlockSize);
            verified += r.Verified;
            bad += r.Bad;
            moved += r.Moved;
            read += r.Read;
            findings.AddRange(r.Findings);
        }
        try
        {
            for (var i = 0; i < depth; i++) buffers[i] = new AlignedBuffer(ChunkBytes + Page);
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
    internal int ReadsInFlight { get; set; } = 4;

    private ChunkResult VerifyChunk(ScrubPlan plan, ScrubChunk chunk, AlignedBuffer buffer, ulong[] seqs)
    {
        // Counted as a reader while the chunk is read: a segment compaction reclaims after this point is not freed
        // under the read, and one it reclaimed before (its blocks now live elsewhere) is skipped.
        var slot = _store.EnterRead();
        bool current;
        try
        {
            current = _segments.StateOf(chunk.Segment) is SegmentState.Used or SegmentState.Current && _segments.SeqOf(chunk.Segment) == seqs[chunk.Segment];
            if (current) _device.Read(buffer.Span[..chunk.Length], chunk.Offset);
        }
        finally { _store.ExitRead(slot); }
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
            var copy = s[..Math.Min(s.Length, EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(LogStore.MaxEntryBlocks)))].ToArray();
            var bit = OneBitCorrection.TryCorrectEntryMeta(copy, copy.Length);
            if (bit >= 0 && HeaderFault(copy, entry.EntryBlock, seq, out h) is null)
            {
                _store.ReportError($"scrub: the entry header at log block {entry.EntryBlock} has one flipped bit (bit {bit}) on the device; corrected where it is read");
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
                    bad += Bad(span, badFrom, i - badFrom, Damage.BadBlocksReason(span.LogBlock + badFrom, i - badFrom, entry.EntryBlock, s), findings);
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
        var marked = _store.Damage.Mark(span.Start + at, count, span.LogBlock + at, reason);
        if (marked.Count == 0)
        {
            if (!span.Staged) return 0;
            _options.Log?.Invoke($"a staged resync copy of logical blocks {span.Start + at}..{span.Start + at + count - 1}: {reason}");
            marked.Add(new ScrubFinding(Id160.Zero, (span.Start + at) * BlockSize, (long)count * BlockSize, reason, Staged: true));
        }
        findings.AddRange(marked);
        Stats.Bad(count);
        return count;
    }

    /// <summary>Waits while having read <paramref name="read"/> bytes is ahead of <paramref name="bytesPerSecond"/> (0: never waits).</summary>
    private static Task PaceAsync(long bytesPerSecond, long read, Stopwatch clock, CancellationToken ct)
    {
        if (bytesPerSecond <= 0) return Task.CompletedTask;
        var ahead = TimeSpan.FromSeconds((double)read / bytesPerSecond) - clock.Elapsed;
        return ahead > TimeSpan.FromMilliseconds(1) ? Task.Delay(ahead, ct) : Task.CompletedTask;
    }

    /// <summary>
    /// Digests <paramref name="volume"/> in ranges of <paramref name="rangeBytes"/> (a positive multiple of 512) as of
    /// its head. Reads only stored blocks (holes cost nothing), verifies them against their CRCs, and marks a range
    /// unreadable instead of failing when a block does not verify or is damaged. Throws
    /// <see cref="VolumeMovedException"/> when the head moved before the digest was done (a write or an applied entry).
    /// </summary>
    public async Task<VolumeDigest> DigestAsync(Id160 volume, long rangeBytes, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        if (rangeBytes <= 0 || rangeBytes % BlockSize != 0) throw new InvalidRangeException($"a digest range must be a positive multiple of {BlockSize} bytes, not {rangeBytes}");
        long lsn;
        Id160 version;
        lock (vol.IndexLock) { lsn = vol.Lsn; version = vol.Version; }
        var count = (int)((vol.SizeBytes + rangeBytes - 1) / rangeBytes);
        var digests = new byte[count * VolumeDigest.DigestSize];
        var unreadable = new List<int>();
        await Task.Run(() =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var extents = new List<Extent>();
            var window = new byte[DigestChunk];
            Span<byte> full = stackalloc byte[32];
            Span<byte> offsetBytes = stackalloc byte[8];
            for (var r = 0; r < count; r++)
            {
                ct.ThrowIfCancellationRequested();
                var start = r * rangeBytes;
                var end = Math.Min(vol.SizeBytes, start + rangeBytes);
                var ok = true;
                for (var at = start; at < end && ok; at += DigestChunk)
                {
                    var len = (int)Math.Min(DigestChunk, end - at);
                    extents.Clear();
                    var slot = _store.EnterRead();
                    try
                    {
                        lock (vol.IndexLock)
                        {
                            if (vol.Damage.Count > 0 && vol.Damage.FirstOverlap(at, len) is not null) { ok = false; break; }
                            vol.Index.Lookup(at / BlockSize, len / BlockSize, extents);
                        }
                        foreach (var e in extents)
                        {
                            if (e.IsZero) continue;
                            var bytes = window.AsSpan(0, e.Count * BlockSize);
                            if (!_store.ReadRunVerified(vol, e, bytes)) { ok = false; break; }
                            for (var i = 0; i < e.Count; i++)
                            {
                                var block = bytes.Slice(i * BlockSize, BlockSize);
                                if (!block.ContainsAnyExcept((byte)0)) continue;
                                BinaryPrimitives.WriteInt64LittleEndian(offsetBytes, (e.Start + i) * BlockSize);
                                sha.AppendData(offsetBytes);
                                sha.AppendData(block);
                            }
                        }
                    }
                    finally { _store.ExitRead(slot); }
                }
                sha.GetHashAndReset(full);
                if (ok) full[..VolumeDigest.DigestSize].CopyTo(digests.AsSpan(r * VolumeDigest.DigestSize));
                else unreadable.Add(r);
            }
        }, ct).ConfigureAwait(false);
        lock (vol.IndexLock)
            if (vol.Lsn != lsn || vol.Version != version) throw new VolumeMovedException(volume, lsn, vol.Lsn);
        return new VolumeDigest(lsn, version, rangeBytes, digests, unreadable);
    }
}
