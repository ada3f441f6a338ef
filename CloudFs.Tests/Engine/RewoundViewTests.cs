// Views across a fork split: B took over and changed views on a chain C never saw, C took over from the same entry;
// once B splits its suffix off, B's volume is back at the view of the rewind point (live, replayed and checkpointed),
// so C's view changes apply as next views, whatever path brings them.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class RewoundViewTests
{
    private static async Task<MemoryStream> Stream(LogStore s, Id160 v, long afterLsn)
    {
        var ms = new MemoryStream();
        await s.Streams.StreamAsync(v, afterLsn, ms, follow: false);
        ms.Position = 0;
        return ms;
    }

    /// <summary>
    /// From the common lsn k (A's view 0): B takes over (view 1) and changes its replica set again (view 2), writing in
    /// between; C, which heard of neither, takes over at k too (view 1 of another chain) and writes.
    /// </summary>
    private static async Task<(long K, VolumeInfo Original)> TwoChains(ThreeHosts h)
    {
        h.ShareSecret();
        var original = h.B.GetVolume(h.Volume)!;
        var k = original.Lsn;
        var b1 = await h.B.Ownership.TakeOverAsync(h.Volume, [h.A.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B))], [h.B.HostId, h.A.HostId, h.C.HostId]);
        Assert.Equal(1, b1.ViewNumber);
        await h.B.WriteAsync(h.Volume, 0, TempLog.Pattern(4096, 20), durable: true);
        var b2 = await h.B.Ownership.TakeOverAsync(h.Volume, [], [h.B.HostId, h.C.HostId]);
        Assert.Equal(2, b2.ViewNumber);
        await h.B.WriteAsync(h.Volume, 8192, TempLog.Pattern(4096, 21), durable: true);
        var c1 = await h.C.Ownership.TakeOverAsync(h.Volume, [h.A.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.C))], [h.C.HostId, h.A.HostId, h.B.HostId]);
        Assert.Equal(1, c1.ViewNumber);
        await h.C.WriteAsync(h.Volume, 4096, TempLog.Pattern(8192, 30), durable: true);
        return (k, original);
    }

    /// <summary>The view state that must agree: number, the version that began it, the replica set.</summary>
    private static (long, Id160, string) ViewOf(VolumeInfo v) => (v.ViewNumber, v.View, string.Join(",", v.Replicas));

    [Fact]
    public async Task A_fork_split_goes_back_to_the_view_at_the_rewind_point_and_the_other_chains_views_follow_as_next_views()
    {
        await using var h = await ThreeHosts.StartAsync();
        var (k, original) = await TwoChains(h);
        Assert.Equal(2, h.B.GetVolume(h.Volume)!.ViewNumber);

        var refused = await h.B.Streams.ApplyLiveAsync(await Stream(h.C, h.Volume, 0), _ => { });
        Assert.True(refused.IsFork, refused.Error);
        var branch = await h.B.SplitForkAsync(h.Volume, k);

        // The views 1 and 2 of the rewound suffix went with it: the volume is at view 0 with A's replica set again.
        var rewound = h.B.GetVolume(h.Volume)!;
        Assert.Equal(k, rewound.Lsn);
        Assert.Equal((0L, h.Volume, string.Join(",", original.Replicas)), ViewOf(rewound));
        // The branch keeps what the suffix read as, and is a volume of its own (view 0).
        Assert.Equal(0, h.B.GetVolume(branch.BaseId)!.ViewNumber);

        // C's chain follows on a replica's live apply: its view 1 is the next view.
        var followed = await h.B.Streams.ApplyLiveAsync(await Stream(h.C, h.Volume, k), _ => { });
        Assert.True(followed.Ok, followed.Error);
        Assert.Equal(ViewOf(h.C.GetVolume(h.Volume)!), ViewOf(h.B.GetVolume(h.Volume)!));
        Assert.Equal(1, h.B.GetVolume(h.Volume)!.ViewNumber);

        // C's next view (2) applies too, through POST /log's path.
        var cHead = h.C.GetVolume(h.Volume)!.Lsn;
        var c2 = await h.C.Ownership.TakeOverAsync(h.Volume, [], [h.C.HostId, h.B.HostId]);
        Assert.Equal(2, c2.ViewNumber);
        var shipped = await h.B.Streams.ApplyAsync(await Stream(h.C, h.Volume, cHead));
        Assert.True(shipped.Ok, shipped.Error);
        var live = h.B.GetVolume(h.Volume)!;
        Assert.Equal((c2.CurrentVersion, ViewOf(c2)), (live.CurrentVersion, ViewOf(live)));

        // A crash (replay of the rewind and of C's entries) and a clean restart (the checkpoint) agree.
        await h.ReopenAsync(1, crash: true);
        Assert.Equal(ViewOf(live), ViewOf(h.B.GetVolume(h.Volume)!));
        await h.ReopenAsync(1);
        await h.ReopenAsync(1);
        Assert.True(h.B.LastRecovery.FromCheckpoint);
        Assert.Equal(ViewOf(live), ViewOf(h.B.GetVolume(h.Volume)!));
    }

    [Fact]
    public async Task After_a_fork_split_a_restart_replays_or_restores_the_view_at_the_rewind_point_and_the_other_chain_applies()
    {
        await using var h = await ThreeHosts.StartAsync();
        var (k, original) = await TwoChains(h);
        await h.B.SplitForkAsync(h.Volume, k);
        var atK = (0L, h.Volume, string.Join(",", original.Replicas));

        // A crash right after the split: replay applies the rewind entry (no checkpoint was taken after it).
        await h.ReopenAsync(1, crash: true);
        Assert.False(h.B.LastRecovery.FromCheckpoint);
        Assert.Equal(k, h.B.GetVolume(h.Volume)!.Lsn);
        Assert.Equal(atK, ViewOf(h.B.GetVolume(h.Volume)!));
        // A clean restart: the checkpoint holds the rewound view.
        await h.ReopenAsync(1);
        await h.ReopenAsync(1);
        Assert.True(h.B.LastRecovery.FromCheckpoint);
        Assert.Equal(atK, ViewOf(h.B.GetVolume(h.Volume)!));

        // C's chain, view 1 first, is taken as the next view by POST /log's apply.
        var r = await h.B.Streams.ApplyAsync(await Stream(h.C, h.Volume, k));
        Assert.True(r.Ok, r.Error);
        Assert.Equal((h.C.GetVolume(h.Volume)!.CurrentVersion, ViewOf(h.C.GetVolume(h.Volume)!)),
            (h.B.GetVolume(h.Volume)!.CurrentVersion, ViewOf(h.B.GetVolume(h.Volume)!)));
    }

    [Fact]
    public async Task A_rewound_replica_that_takes_over_begins_the_view_after_the_one_at_the_rewind_point()
    {
        await using var h = await ThreeHosts.StartAsync();
        var (k, _) = await TwoChains(h);
        await h.B.SplitForkAsync(h.Volume, k);

        // B's own share is of view 0, the view at k: with A's it recovers the secret of k's head and takes over.
        var taken = await h.B.Ownership.TakeOverAsync(h.Volume, [h.A.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B))], [h.B.HostId, h.C.HostId, h.A.HostId]);
        Assert.Equal(1, taken.ViewNumber);
        Assert.Equal(k + 1, taken.Lsn);
        Assert.Equal(taken.CurrentVersion, taken.View);
        // A (which never heard of any view change) follows it as its next view.
        var r = await h.A.Streams.ApplyLiveAsync(await Stream(h.B, h.Volume, k), _ => { });
        Assert.True(r.Ok, r.Error);
        Assert.Equal(ViewOf(taken), ViewOf(h.A.GetVolume(h.Volume)!));
    }
}
