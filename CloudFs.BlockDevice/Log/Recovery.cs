// Roll-forward: from a start position, walk entries, durable marks and segment-end records, verifying every checksum.
// What fails to verify is a torn tail only when no durable mark after it says it was synced; otherwise it is corruption
// of durable data, and the walk keeps everything around it (docs/FORMAT.md, "Recovery").
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

/// <summary>A verified entry as recovery hands it over: its bytes, header, place, and the stored blocks that failed.</summary>
/// <param name="BadBlocks">Indexes (among the stored blocks) of blocks whose CRC fails; null when every block verifies.</param>
internal readonly record struct ReplayedEntry(ReadOnlyMemory<byte> Bytes, EntryHeader Header, long DeviceOffset, int[]? BadBlocks);

/// <summary>A stretch of durable log that holds no readable record, skipped by recovery.</summary>
/// <param name="Hint">What the unreadable header claims (volume, lsn), unverified: for the log line only.</param>
internal readonly record struct SkippedSpan(int Segment, long FromOffset, long ToOffset, string Reason, string? Hint);

/// <summary>What recovery feeds: the store's chain rules and in-memory state.</summary>
internal interface IReplaySink
{
    /// <summary>Null to accept (and apply) the entry, otherwise why the log ends here.</summary>
    string? Accept(in ReplayedEntry entry);

    /// <summary>A span of durable log could not be read; the walk goes on after it.</summary>
    void Skipped(in SkippedSpan span);
}

internal sealed class Recovery(ILogDevice device, DeviceHeader layout, SegmentTable segments, Action<string>? log, Action<string> error)
{
    private const int Sector = SegmentRecord.Size;

    public long EntriesReplayed { get; private set; }
    /// <summary>Bytes of the replayed entries (what the checkpoint bound, LogStoreOptions.CheckpointBytes, limits).</summary>
    public long BytesReplayed { get; private set; }
    public string StopReason { get; private set; } = "";
    /// <summary>True when records of the current segment's seq lie after the end: the writer must not reuse that seq there.</summary>
    public bool StaleAfterEnd { get; private set; }

    // The newest durable position proven by a mark read so far, and the newest proven by a mark anywhere after the
    // first unreadable place (found by one survey, then reused).
    private LogPosition _durable;
    private LogPosition? _surveyed;

    /// <summary>
    /// Walks the log from <paramref name="start"/> (a checkpoint's position: durable) handing every verified entry to
    /// <paramref name="sink"/>. Returns where the writer continues and whether it must (re)write that segment's header.
    /// </summary>
    public (WriterPosition Position, bool NeedHeader) RollForward(WriterPosition start, IReplaySink sink)
    {
        using var seg = new AlignedBuffer(layout.SegmentSize);
        var index = start.Segment;
        var seq = start.Seq;
        var nextSeq = start.NextSeq;
        var segStart = layout.SegmentOffset(index);
        var pos = start.Offset;
        _durable = new LogPosition(seq, pos);
        device.Read(seg.Span, segStart);
        segments.Set(index, SegmentState.Current, seq);
        if (pos == segStart)
        {
            if (!HeaderOrCorrected(seg.Span, index, seq, segStart))
            {
                StopReason = "the segment holds no header yet";
                return (new WriterPosition(index, seq, pos, nextSeq), true);
            }
            pos += Sector;
        }
        var mem = seg.Memory;
        while (true)
        {
            var rel = (int)(pos - segStart);
            if (rel + Sector > layout.SegmentSize) { StopReason = "the segment ended without an end record"; break; }
            var span = seg.Span[rel..];
            if (SegmentRecord.IsRecordMagic(span) && IsEndOf(span, index, seq, out var end))
            {
                segments.Set(index, SegmentState.Used, seq);
                index = end.NextIndex;
                seq = end.NextSeq;
                nextSeq = Math.Max(nextSeq, seq + 1);
                segStart = layout.SegmentOffset(index);
                pos = segStart;
                device.Read(seg.Span, segStart);
                segments.Set(index, SegmentState.Current, seq);
                if (!HeaderOrCorrected(seg.Span, index, seq, segStart))
                {
                    StopReason = "the next segment's header was never written";
                    return (new WriterPosition(index, seq, pos, nextSeq), true);
                }
                pos += Sector;
                continue;
            }
            if (IsMarkOf(span, index, seq, out var mark))
            {
                if (mark.Durable > _durable) _durable = mark.Durable;
                pos += Sector;
                continue;
            }
            var (h, error) = ReadEntryHeader(span, seq, layout.SegmentSize - rel);
            if (error is null)
            {
                var entry = mem.Slice(rel, h.TotalBytes);
                var bad = BadBlocks(entry.Span, h, out var whyBad);
                // A header that verifies over data that does not: durable → the blocks are damaged; else a torn write.
                if (whyBad is not null)
                {
                    if (!IsDurable(seg.Span, index, seq, segStart, new LogPosition(seq, pos + h.TotalBytes))) { StopReason = whyBad; break; }
                    if (bad is { Length: 0 })
                    {
                        // Its blocks verify but the entry as a whole does not (digest, payload): nothing of it can be kept.
                        Skip(sink, new SkippedSpan(index, rel, rel + h.TotalBytes, whyBad, Hint(span)), pos);
                        pos += h.TotalBytes;
                        continue;
                    }
                }
                var refused = sink.Accept(new ReplayedEntry(entry, h, pos, bad));
                if (refused is not null) { StopReason = refused; break; }
                EntriesReplayed++;
                BytesReplayed += h.TotalBytes;
                pos += h.TotalBytes;
                continue;
            }
            // One flipped bit is corrected wherever it is; anything else is a torn tail after the last flush, corruption before it.
            if (TryCorrectRecord(seg.Span, rel, index, seq, pos)) continue;
            if (!IsDurable(seg.Span, index, seq, segStart, new LogPosition(seq, pos + Sector))) { StopReason = error; break; }
            var next = NextRecord(seg.Span, rel + Sector, index, seq);
            if (next < 0) { StopReason = $"{error}, and no record follows in segment {index} although a later flush covers it"; break; }
            Skip(sink, new SkippedSpan(index, rel, next, error, Hint(span)), pos);
            pos = segStart + next;
        }
        log?.Invoke($"roll-forward: {EntriesReplayed} entries ({BytesReplayed} bytes) replayed; stopped at segment {index} offset {pos - segStart}: {StopReason}");
        StaleAfterEnd = NextRecord(seg.Span, (int)(pos - segStart), index, seq) >= 0;
        return (new WriterPosition(index, seq, pos, nextSeq), false);
    }

    private void Skip(IReplaySink sink, in SkippedSpan span, long pos)
    {
        error($"recovery: segment {span.Segment} bytes {span.FromOffset}..{span.ToOffset - 1} (log position {pos}) hold no readable entry "
                    + $"({span.Reason}) but were flushed before later entries: skipped, not truncated{(span.Hint is { } hint ? $"; the header there claims {hint}" : "")}");
        sink.Skipped(span);
    }

    /// <summary>A header that parses, belongs to this segment, fits it and whose CRC (header and table) verifies.</summary>
    private static (EntryHeader Header, string? Error) ReadEntryHeader(ReadOnlySpan<byte> span, ulong seq, int room)
    {
        if (!EntryHeader.TryParse(span, out var h, out var err)) return (h, err ?? "no entry");
        if (h.SegmentSeq != seq) return (h, $"a stale entry (segment seq {h.SegmentSeq}, expected {seq})");
        if (h.TotalBytes + Sector > room) return (h, "an entry that overruns its segment");
        if (!EntryCodec.HeaderCrcMatches(span[..(h.MetaSectors * Sector)])) return (h, "the entry header fails its checksum");
        return (h, null);
    }

    /// <summary>Stored blocks of a header-verified entry that fail their CRCs (null: all good), and why the entry is bad.</summary>
    private static int[]? BadBlocks(ReadOnlySpan<byte> entry, EntryHeader h, out string? why)
    {
        why = null;
        List<int>? bad = null;
        var dataOff = Sector * h.MetaSectors;
        for (var k = 0; k < h.StoredCount; k++)
            if (Crc32C.Compute(entry.Slice(dataOff + k * Sector, Sector)) != EntryCodec.GetBlockCrc(entry, k)) (bad ??= new()).Add(k);
        if (bad is not null) { why = $"stored block {bad[0]} fails its checksum"; return bad.ToArray(); }
        why = EntryCodec.Verify(entry, out _);
        // Every block verifies yet the entry does not: not damage of stored blocks, so it cannot be kept.
        return why is null ? null : [];
    }

    /// <summary>True when a durable mark (read already, or anywhere later in the log) covers <paramref name="upTo"/>.</summary>
    private bool IsDurable(ReadOnlySpan<byte> current, int index, ulong seq, long segStart, LogPosition upTo)
    {
        if (_durable >= upTo) return true;
        _surveyed ??= Survey(current, index, seq, segStart, (int)(upTo.Offset - segStart));
        return _surveyed >= upTo;
    }

    /// <summary>
    /// Walks the rest of the log from <paramref name="from"/> without applying anything: over readable records by their
    /// size, over anything else a sector at a time, through end records; returns the newest durable position any mark
    /// on the way proves (the start position when there is none).
    /// </summary>
    private LogPosition Survey(ReadOnlySpan<byte> current, int index, ulong seq, long segStart, int from)
    {
        var best = _durable;
        AlignedBuffer? other = null;
        try
        {
            var seg = current;
            var rel = Math.Max(from, Sector);
            var visited = 0;
            while (visited++ < layout.SegmentCount)
            {
                var next = -1;
                while (rel + Sector <= layout.SegmentSize)
                {
                    var span = seg[rel..];
                    if (IsEndOf(span, index, seq, out var end)) { next = end.NextIndex; seq = end.NextSeq; break; }
                    if (IsMarkOf(span, index, seq, out var mark))
                    {
                        if (mark.Durable > best) best = mark.Durable;
                        rel += Sector;
                        continue;
                    }
                    var (h, error) = ReadEntryHeader(span, seq, layout.SegmentSize - rel);
                    rel += error is null ? h.TotalBytes : Sector;
                }
                if (next < 0) break;
                index = next;
                segStart = layout.SegmentOffset(index);
                other ??= new AlignedBuffer(layout.SegmentSize);
                device.Read(other.Span, segStart);
                seg = other.Span;
                if (!ValidHeader(seg, index, seq)) break;
                rel = Sector;
            }
        }
        finally { ((IDisposable?)other)?.Dispose(); }
        return best;
    }

    /// <summary>The offset (in the segment) of the first readable record at or after <paramref name="from"/>, or -1.</summary>
    private int NextRecord(ReadOnlySpan<byte> seg, int from, int index, ulong seq)
    {
        for (var rel = from; rel + Sector <= layout.SegmentSize; rel += Sector)
        {
            var span = seg[rel..];
            if (IsEndOf(span, index, seq, out _) || IsMarkOf(span, index, seq, out _) || ReadEntryHeader(span, seq, layout.SegmentSize - rel).Error is null)
                return rel;
        }
        return -1;
    }

    /// <summary>
    /// One flipped bit in a record (an entry's header or CRC table, a segment header or end record, a mark) is found
    /// (<see cref="OneBitCorrection"/>) and corrected, on disk too, so later reads find a record that verifies. Several
    /// flipped bits are not. A torn write leaves old content, never a record one bit away from a new one, so a correction
    /// is safe wherever it is found.
    /// </summary>
    private bool TryCorrect(Span<byte> seg, int rel, long pos, int sectors, OneBitCorrection.Validity valid)
    {
        var bit = OneBitCorrection.TryCorrect(seg[rel..], sectors * Sector, valid);
        if (bit < 0) return false;
        RewriteSectors(seg, rel, pos, sectors);
        error($"recovery: the record at log position {pos} had one flipped bit (bit {bit}); corrected and rewritten");
        return true;
    }

    /// <summary>A record where the walk expects one (entry, mark, end record), corrected when one bit is off.</summary>
    private bool TryCorrectRecord(Span<byte> seg, int rel, int index, ulong seq, long pos)
    {
        var room = layout.SegmentSize - rel;
        // An entry's CRC also covers its table sectors: with a header that parses, try those bits too.
        var sectors = EntryHeader.TryParse(seg[rel..], out var asIs, out _) && asIs.StoredCount > 0 ? Math.Min(asIs.MetaSectors, room / Sector) : 1;
        return TryCorrect(seg, rel, pos, sectors, s => IsEndOf(s, index, seq, out _) || IsMarkOf(s, index, seq, out _) || ReadEntryHeader(s, seq, room).Error is null);
    }

    /// <summary>A segment's header, corrected when one bit is off.</summary>
    private bool HeaderOrCorrected(Span<byte> seg, int index, ulong seq, long segStart) =>
        ValidHeader(seg, index, seq) || TryCorrect(seg, 0, segStart, 1, s => ValidHeader(s, index, seq));

    /// <summary>Writes corrected sectors back: the pages that hold them, from the (corrected) segment image.</summary>
    private void RewriteSectors(ReadOnlySpan<byte> seg, int rel, long pos, int sectors)
    {
        const int page = AlignedBuffer.Alignment;
        var segStart = pos - rel;
        var first = rel & ~(page - 1);
        var last = (rel + sectors * Sector + page - 1) & ~(page - 1);
        using var buf = new AlignedBuffer(last - first);
        seg[first..last].CopyTo(buf.Span);
        device.Write(buf.Span, segStart + first);
        device.Flush();
    }

    /// <summary>What an unreadable header claims, when its volume and lsn fields look like anything: for the log line.</summary>
    private static string? Hint(ReadOnlySpan<byte> s)
    {
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(s) != EntryHeader.Magic) return null;
        var lsn = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(s[EntryHeader.OffLsn..]);
        return $"volume {new Id160(s[EntryHeader.OffVolume..])}, lsn {lsn} (unverified)";
    }

    private bool IsEndOf(ReadOnlySpan<byte> s, int index, ulong seq, out SegmentRecord r) =>
        SegmentRecord.TryDecode(s, out r) && r.IsEnd && r.DeviceId == layout.DeviceId && r.Seq == seq && r.Index == index
        && r.NextIndex >= 0 && r.NextIndex < layout.SegmentCount && r.NextIndex != index;

    private bool IsMarkOf(ReadOnlySpan<byte> s, int index, ulong seq, out DurableMark m) =>
        DurableMark.TryDecode(s, out m) && m.DeviceId == layout.DeviceId && m.Seq == seq && m.Index == index;

    private bool ValidHeader(ReadOnlySpan<byte> s, int index, ulong seq) =>
        SegmentRecord.TryDecode(s, out var r) && !r.IsEnd && r.DeviceId == layout.DeviceId && r.Seq == seq && r.Index == index;
}
