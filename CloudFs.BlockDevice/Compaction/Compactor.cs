// Compaction's bookkeeping: which log blocks are live (referenced by any index or branch-parent snapshot) and how
// many live bytes each segment holds, computed by scanning the indexes when compaction runs.
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;

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

    public static int SegmentOf(DeviceHeader layout, long logBlock)
    {
        var rel = logBlock * LogStore.BlockSize - layout.FirstSegmentOffset;
        if (rel < 0) return -1;
        var seg = rel / layout.SegmentSize;
        return seg < layout.SegmentCount ? (int)seg : -1;
    }
}
