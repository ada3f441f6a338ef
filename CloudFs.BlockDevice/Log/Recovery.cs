// Roll-forward: from a start position, walk entries and segment-end records, verifying every checksum, until the first
// torn, foreign or stale entry; the append point is right after the last good one.
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

internal sealed class Recovery(ILogDevice device, DeviceHeader layout, SegmentTable segments, Action<string>? log)
{
    public long EntriesReplayed { get; private set; }
    public string StopReason { get; private set; } = "";

    /// <summary>
    /// Walks the log from <paramref name="start"/> calling <paramref name="accept"/> (entry bytes, header, device offset)
    /// for each verified entry; accept returns null to go on or the reason to stop (chain rules).
    /// Returns where the writer continues and whether it must (re)write that segment's header first.
    /// </summary>
    public (WriterPosition Position, bool NeedHeader) RollForward(WriterPosition start, Func<ReadOnlyMemory<byte>, EntryHeader, long, string?> accept)
    {
        using var seg = new AlignedBuffer(layout.SegmentSize);
        var index = start.Segment;
        var seq = start.Seq;
        var nextSeq = start.NextSeq;
        var segStart = layout.SegmentOffset(index);
        var pos = start.Offset;
        device.Read(seg.Span, segStart);
        segments.Set(index, SegmentState.Current, seq);
        if (pos == segStart)
        {
            if (!ValidHeader(seg.Span, index, seq))
            {
                StopReason = "the segment holds no header yet";
                return (new WriterPosition(index, seq, pos, nextSeq), true);
            }
            pos += SegmentRecord.Size;
        }
        var mem = seg.Memory;
        while (true)
        {
            var rel = (int)(pos - segStart);
            if (rel + SegmentRecord.Size > layout.SegmentSize) { StopReason = "the segment ended without an end record"; break; }
            var span = seg.Span[rel..];
            if (SegmentRecord.IsRecordMagic(span))
            {
                if (!SegmentRecord.TryDecode(span, out var r) || !r.IsEnd || r.DeviceId != layout.DeviceId || r.Seq != seq || r.Index != index
                    || r.NextIndex < 0 || r.NextIndex >= layout.SegmentCount || r.NextIndex == index)
                { StopReason = "a segment record that does not belong here"; break; }
                segments.Set(index, SegmentState.Used, seq);
                index = r.NextIndex;
                seq = r.NextSeq;
                nextSeq = Math.Max(nextSeq, seq + 1);
                segStart = layout.SegmentOffset(index);
                pos = segStart;
                device.Read(seg.Span, segStart);
                segments.Set(index, SegmentState.Current, seq);
                if (!ValidHeader(seg.Span, index, seq))
                {
                    StopReason = "the next segment's header was never written";
                    return (new WriterPosition(index, seq, pos, nextSeq), true);
                }
                pos += SegmentRecord.Size;
                continue;
            }
            if (!EntryHeader.TryParse(span, out var h, out var err)) { StopReason = err ?? "no entry"; break; }
            if (h.SegmentSeq != seq) { StopReason = $"a stale entry (segment seq {h.SegmentSeq}, expected {seq})"; break; }
            if (rel + h.TotalBytes + SegmentRecord.Size > layout.SegmentSize) { StopReason = "an entry that overruns its segment"; break; }
            var entry = mem.Slice(rel, h.TotalBytes);
            var bad = EntryCodec.Verify(entry.Span, out _);
            if (bad is not null) { StopReason = bad; break; }
            var refused = accept(entry, h, pos);
            if (refused is not null) { StopReason = refused; break; }
            EntriesReplayed++;
            pos += h.TotalBytes;
        }
        log?.Invoke($"roll-forward: {EntriesReplayed} entries replayed; stopped at segment {index} offset {pos - segStart}: {StopReason}");
        return (new WriterPosition(index, seq, pos, nextSeq), false);
    }

    private bool ValidHeader(ReadOnlySpan<byte> s, int index, ulong seq) =>
        SegmentRecord.TryDecode(s, out var r) && !r.IsEnd && r.DeviceId == layout.DeviceId && r.Seq == seq && r.Index == index;
}
