// Which segments a compaction pass takes: empty ones always, others only when copying them frees room, cheapest
// first within the room the pass may use; past the threshold normally, and any that gains while space is short.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Compaction;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;

namespace CloudFs.Tests.Engine;

public sealed class CompactionPlanTests
{
    private const int SegmentSize = 1 << 20;
    private const int Piece = SegmentSize / 16 / LogStore.BlockSize;
    private static readonly DeviceHeader Layout = new(Id160.Random(), Guid.NewGuid(), SegmentSize, 4096, 4096 + (4 << 20), 4 << 20, 4096 + (8 << 20), 8, 1);
    private static readonly long Usable = Compactor.UsableBytes(Layout, Piece);

    [Theory]
    [InlineData(0.2, 56, 64, 0.875)]
    [InlineData(0.2, 16, 64, 0.25)]
    [InlineData(0.2, 8, 64, 0.2)]
    [InlineData(0.5, 0, 64, 0.5)]
    public void A_scheduled_pass_needs_segments_at_least_as_dead_as_the_log_is_free(double threshold, int free, int total, double expected) =>
        Assert.Equal(expected, Compactor.ScheduledThreshold(threshold, free, total), 6);

    [Fact]
    public void Empty_segments_are_taken_even_with_no_room_to_copy()
    {
        var (states, live, runs) = Log(0, 0, 1024);
        Assert.Equal([0, 1], Plan(states, live, runs, threshold: 0.2, budget: 0));
    }

    [Fact]
    public void A_segment_whose_copy_takes_a_whole_segment_is_never_taken()
    {
        var (states, live, runs) = Log(1900, 2000);
        Assert.Empty(Plan(states, live, runs, threshold: null, budget: long.MaxValue / 2));
    }

    [Fact]
    public void Normally_a_segment_must_be_dead_past_the_threshold()
    {
        var (states, live, runs) = Log(1468, 1468, 1468, 1468, 1468, 512);
        Assert.Equal([5], Plan(states, live, runs, threshold: 0.5, budget: long.MaxValue / 2));
    }

    [Fact]
    public void While_space_is_short_any_segment_that_gains_counts_but_not_copies_that_free_less_than_a_segment()
    {
        // 70 % live: each copy gains about a fifth of a segment; four together free less than one, five more.
        var (states, live, runs) = Log(1468, 1468, 1468, 1468);
        Assert.Empty(Plan(states, live, runs, threshold: null, budget: long.MaxValue / 2));
        (states, live, runs) = Log(1468, 1468, 1468, 1468, 1468);
        Assert.Equal([0, 1, 2, 3, 4], Plan(states, live, runs, threshold: null, budget: long.MaxValue / 2));
    }

    [Fact]
    public void Copies_stay_within_the_budget_cheapest_first()
    {
        var (states, live, runs) = Log(800, 200, 600, 400);
        var budget = Compactor.CopyBytes(200, Piece) + Compactor.CopyBytes(400, Piece);
        Assert.Equal([1, 3], Plan(states, live, runs, threshold: 0.2, budget: budget));
        Assert.Equal([1], Plan(states, live, runs, threshold: 0.2, budget: budget - 1));
    }

    [Fact]
    public void Only_used_segments_no_replica_still_needs_are_taken()
    {
        var (states, live, runs) = Log(0, 0, 0, 0, 0);
        states[0] = SegmentState.Current;
        states[1] = SegmentState.Free;
        states[2] = SegmentState.Reclaimed;
        Assert.Equal([4], Compactor.Plan(Layout, states, live, runs, new HashSet<int> { 3 }, null, 0, Piece));
    }

    private static List<int> Plan(SegmentState[] states, long[] live, Dictionary<int, List<LiveRun>> runs, double? threshold, long budget) =>
        Compactor.Plan(Layout, states, live, runs, new HashSet<int>(), threshold, budget, Piece);

    /// <summary>Used segments holding one live run each of the given number of blocks (0: wholly dead).</summary>
    private static (SegmentState[] States, long[] Live, Dictionary<int, List<LiveRun>> Runs) Log(params int[] liveBlocks)
    {
        var states = new SegmentState[Layout.SegmentCount];
        var live = new long[Layout.SegmentCount];
        var runs = new Dictionary<int, List<LiveRun>>();
        for (var i = 0; i < liveBlocks.Length; i++)
        {
            states[i] = SegmentState.Used;
            if (liveBlocks[i] == 0) continue;
            var entry = Layout.SegmentOffset(i) / LogStore.BlockSize + 1;
            runs[i] = [new LiveRun(Id160.Random(), new Extent(0, liveBlocks[i], entry + 1, entry))];
            live[i] = (long)liveBlocks[i] * LogStore.BlockSize;
        }
        return (states, live, runs);
    }
}
