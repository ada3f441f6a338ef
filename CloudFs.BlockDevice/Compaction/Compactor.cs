// Compaction's bookkeeping: which log blocks are live (referenced by any index or branch-parent snapshot) and how
// many live bytes each segment holds, computed by scanning the indexes when compaction runs; and which segments a pass
// compacts within the room it may use.
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;

namespace CloudFs.BlockDevice.Compaction;

/// <summary>One live run found in a segment: where it lives now and which index holds it.</summary>
internal readonly record struct LiveRun(Id160 Volume, Extent Extent);

internal static class Compactor
{
    /// <summary>Live bytes per segment and, for each segment, the runs that keep it alive.</summary>
    public static (long[] LiveBytes, Dictionary<int, List<LiveRun>> Runs) ScanLive(
        DeviceHeader layout, IEnumerable<(Id160 Volume, ExtentIndex Index)> indexes)
    {
        var live = new long[layout.SegmentCount];
        var runs = new Dictionary<int, List<LiveRun>>();
        var seen = new HashSet<(long, long)>();
        foreach (var (vol, index) in indexes)
        {
            foreach (var e in index.Enumerate())
            {
                if (e.IsZero) continue;
                // Runs of one entry never straddle segments; the same run shared by several indexes counts once.
                if (!seen.Add((e.LogBlock, e.Count))) continue;
                var seg = SegmentOf(layout, e.LogBlock);
                if (seg < 0) continue;
                live[seg] += (long)e.Count * LogStore.BlockSize;
                if (!runs.TryGetValue(seg, out var list)) runs[seg] = list = new List<LiveRun>();
                list.Add(new LiveRun(vol, e));
            }
        }
        return (live, runs);
    }

    /// <summary>Bytes the relocation entries (of at most <paramref name="pieceBlocks"/> blocks each) for a run of <paramref name="blocks"/> take.</summary>
    public static long CopyBytes(int blocks, int pieceBlocks)
    {
        var whole = blocks / pieceBlocks;
        var rest = blocks % pieceBlocks;
        return (long)whole * EntryHeader.TotalBytesFor(pieceBlocks) + (rest > 0 ? EntryHeader.TotalBytesFor(rest) : 0);
    }

    /// <summary>
    /// Room relocation entries surely get out of one segment: all of it but its header and end record and the tail an
    /// entry that does not fit leaves behind.
    /// </summary>
    public static long UsableBytes(DeviceHeader layout, int pieceBlocks) =>
        layout.SegmentSize - 2L * SegmentRecord.Size - EntryHeader.TotalBytesFor(pieceBlocks);

    /// <summary>
    /// The segments to compact, cheapest copy first. Each must take less room to copy than a segment gives (or it frees
    /// nothing), and all the copies together must fit <paramref name="budget"/> bytes. With a <paramref name="threshold"/>
    /// a segment must also be at least that fraction dead; without one (free space is short) any segment that gains
    /// counts, but copies that together free less than one segment are not worth their writes. Empty segments cost nothing.
    /// </summary>
    public static List<int> Plan(DeviceHeader layout, IReadOnlyList<SegmentState> states, long[] live,
        Dictionary<int, List<LiveRun>> runs, IReadOnlySet<int> retained, double? threshold, long budget, int pieceBlocks)
    {
        var usable = UsableBytes(layout, pieceBlocks);
        var candidates = new List<(int Segment, long Cost)>();
        for (var i = 0; i < states.Count; i++)
        {
            if (states[i] != SegmentState.Used || retained.Contains(i)) continue;
            if (threshold is { } t && 1.0 - (double)live[i] / layout.SegmentSize < t) continue;
            long cost = 0;
            if (runs.TryGetValue(i, out var list))
                foreach (var r in list) cost += CopyBytes(r.Extent.Count, pieceBlocks);
            if (cost < usable) candidates.Add((i, cost));
        }
        candidates.Sort((a, b) => a.Cost != b.Cost ? a.Cost.CompareTo(b.Cost) : a.Segment.CompareTo(b.Segment));
        var plan = new List<int>();
        long spent = 0, gain = 0;
        foreach (var (seg, cost) in candidates)
        {
            if (spent + cost > budget) break;
            spent += cost;
            plan.Add(seg);
            if (cost > 0) gain += usable - cost;
        }
        if (threshold is null && spent > 0 && gain < usable) plan.RemoveAll(seg => runs.ContainsKey(seg));
        return plan;
    }

    /// <summary>
    /// The dead fraction a segment needs on a scheduled pass: the configured threshold, or the fraction of the log's
    /// segments that are free if that is higher. Copying a segment that is d dead writes 1-d of a segment to gain d;
    /// while the log is mostly free nothing needs the space yet, and overwrites only make the segment deader, so the
    /// copy is left until free space falls to its level (at the low-water mark every pass takes what frees space).
    /// </summary>
    public static double ScheduledThreshold(double threshold, int freeSegments, int segmentCount) =>
        segmentCount <= 0 ? threshold : Math.Max(threshold, (double)freeSegments / segmentCount);

    public static int SegmentOf(DeviceHeader layout, long logBlock)
    {
        var rel = logBlock * LogStore.BlockSize - layout.FirstSegmentOffset;
        if (rel < 0) return -1;
        var seg = rel / layout.SegmentSize;
        return seg < layout.SegmentCount ? (int)seg : -1;
    }
}
