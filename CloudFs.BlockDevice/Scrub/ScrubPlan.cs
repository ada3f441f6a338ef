// What a scrub reads: every live stored run of the log (taken from the indexes), grouped by the entry whose header holds
// their checksums and laid out in large aligned chunks in log order, so the device sees long sequential reads.
using CloudFs.BlockDevice.Compaction;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice.Scrub;

/// <summary>Live blocks of one entry: logical blocks [Start, Start+Count) stored at log blocks [LogBlock, LogBlock+Count).</summary>
/// <param name="Staged">Referenced by a resync's staged copy (which no volume reads yet).</param>
internal readonly record struct LiveSpan(long Start, int Count, long LogBlock, bool Staged)
{
    public long LogEnd => LogBlock + Count;
}

/// <summary>One entry's header position and the live spans of its blocks, in log order and not overlapping.</summary>
internal sealed record ScrubEntry(long EntryBlock, IReadOnlyList<LiveSpan> Spans)
{
    /// <summary>The log block after its last live block: a chunk reads the entry from its header to here.</summary>
    public long EndBlock => Spans[^1].LogEnd;
}

/// <summary>One device read: [Offset, Offset+Length) inside <paramref name="Segment"/>, covering Entries[First..First+Count).</summary>
internal readonly record struct ScrubChunk(int Segment, long Offset, int Length, int First, int Count);

internal sealed class ScrubPlan
{
    private const int Page = Device.AlignedBuffer.Alignment;

    public required IReadOnlyList<ScrubEntry> Entries { get; init; }
    public required IReadOnlyList<ScrubChunk> Chunks { get; init; }
    /// <summary>Distinct live blocks the plan verifies (a run several indexes share counts once).</summary>
    public required long LiveBlocks { get; init; }

    /// <summary>
    /// Groups the stored extents of <paramref name="extents"/> by entry, merges what several indexes share, and cuts the
    /// entries (in log order) into reads of at most <paramref name="maxChunk"/> bytes that never cross a segment and
    /// skip gaps of dead space longer than <paramref name="maxGap"/> bytes (shorter ones are read through: one longer
    /// read costs less than two).
    /// </summary>
    public static ScrubPlan Build(DeviceHeader layout, IEnumerable<(Extent Extent, bool Staged)> extents, int maxChunk, int maxGap)
    {
        var byEntry = new Dictionary<long, List<LiveSpan>>();
        foreach (var (e, staged) in extents)
        {
            if (e.IsZero || e.Count <= 0) continue;
            if (!byEntry.TryGetValue(e.EntryBlock, out var list)) byEntry[e.EntryBlock] = list = new List<LiveSpan>();
            list.Add(new LiveSpan(e.Start, e.Count, e.LogBlock, staged));
        }
        var entries = new List<ScrubEntry>(byEntry.Count);
        long live = 0;
        foreach (var (entryBlock, spans) in byEntry)
        {
            var merged = Merge(spans);
            foreach (var s in merged) live += s.Count;
            entries.Add(new ScrubEntry(entryBlock, merged));
        }
        entries.Sort((a, b) => a.EntryBlock.CompareTo(b.EntryBlock));

        var chunks = new List<ScrubChunk>();
        for (var i = 0; i < entries.Count;)
        {
            var segment = Compactor.SegmentOf(layout, entries[i].EntryBlock);
            var start = AlignDown(entries[i].EntryBlock * LogStore.BlockSize);
            var end = AlignUp(entries[i].EndBlock * LogStore.BlockSize);
            var j = i + 1;
            for (; j < entries.Count; j++)
            {
                var next = entries[j];
                if (Compactor.SegmentOf(layout, next.EntryBlock) != segment) break;
                var nextEnd = Math.Max(end, AlignUp(next.EndBlock * LogStore.BlockSize));
                if (next.EntryBlock * LogStore.BlockSize - end > maxGap || nextEnd - start > maxChunk) break;
                end = nextEnd;
            }
            chunks.Add(new ScrubChunk(segment, start, (int)(end - start), i, j - i));
            i = j;
        }
        return new ScrubPlan { Entries = entries, Chunks = chunks, LiveBlocks = live };
    }

    /// <summary>Spans of one entry in log order, overlapping or touching ones joined (the same blocks reached from several indexes).</summary>
    private static List<LiveSpan> Merge(List<LiveSpan> spans)
    {
        spans.Sort((a, b) => a.LogBlock.CompareTo(b.LogBlock));
        var merged = new List<LiveSpan>(spans.Count);
        foreach (var s in spans)
        {
            // Within one entry a log block always holds the same logical block, so spans that meet in the log and keep
            // that mapping are one span; touching spans whose mapping jumps (an unstored gap between) stay apart.
            if (merged.Count > 0 && merged[^1] is var last && s.LogBlock <= last.LogEnd && s.Start - s.LogBlock == last.Start - last.LogBlock)
            {
                var end = Math.Max(last.LogEnd, s.LogEnd);
                merged[^1] = last with { Count = (int)(end - last.LogBlock), Staged = last.Staged || s.Staged };
            }
            else merged.Add(s);
        }
        return merged;
    }

    private static long AlignDown(long offset) => offset & ~(long)(Page - 1);
    private static long AlignUp(long offset) => (offset + Page - 1) & ~(long)(Page - 1);
}
