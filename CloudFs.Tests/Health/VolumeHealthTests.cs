// VolumeHealth decides every word (healthy, degraded (k of n current), resyncing (percent), outdated, damaged) and each
// replica's state and lag from what placement knows of the replica set: the hosts' reports, their followers' states,
// the heads last known of away hosts and the bytes the primary measured.
using CloudFs.Actors.Management;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;
using static CloudFs.Actors.Management.VolumeHealth;

namespace CloudFs.Tests.Health;

public sealed class VolumeHealthTests
{
    private const long Size = 1L << 30;
    private const string P = "p", A = "a", B = "b";

    private static VolumeReport Copy(long lsn, bool writable = false, long view = 0, long damaged = 0) =>
        new("v", Size, VolumeMode.Sync, [P, A, B], lsn, "ver" + lsn, writable, view, null, damaged);

    private static ReplicaInput Primary(long lsn = 100, long view = 0, long damaged = 0) => new(P, true, Copy(lsn, true, view, damaged), lsn, null, null);

    private static ReplicaInput Replica(string host, long lsn, ReplicaSync? sync = null, bool live = true, long view = 0, long? lagBytes = null, long damaged = 0) =>
        new(host, live, live ? Copy(lsn, view: view, damaged: damaged) : null, lsn, sync, lagBytes);

    private static ReplicaSync Sync(string state, long done = 0, long total = 0) => new("v", state, done, total);

    [Fact]
    public void Every_replica_at_the_primarys_head_is_healthy_with_no_lag()
    {
        var v = Decide(Size, P, [Primary(), Replica(A, 100), Replica(B, 100)]);
        Assert.Equal(Healthy, v.Word);
        Assert.Equal(3, v.Current);
        Assert.Null(v.ResyncPercent);
        Assert.Equal([ReplicaLag.Primary, ReplicaLag.Current, ReplicaLag.Current], v.Replicas.Select(r => r.State));
        Assert.All(v.Replicas, r => Assert.Equal((0L, 0L), (r.LagEntries!.Value, r.LagBytes!.Value)));
    }

    [Fact]
    public void A_replica_following_the_primary_is_current_while_entries_are_in_flight()
    {
        var v = Decide(Size, P, [Primary(), Replica(A, 97, Sync(ReplicaSync.Following), lagBytes: 3 * 4608), Replica(B, 100)]);
        Assert.Equal(Healthy, v.Word);
        Assert.Equal(new ReplicaLag(A, ReplicaLag.Current, 3, 3 * 4608), v.Replicas[1]);
    }

    [Fact]
    public void A_follower_reconnecting_or_catching_up_with_the_head_already_held_is_current_not_resyncing_at_0_percent()
    {
        var v = Decide(Size, P, [Primary(), Replica(A, 100, Sync(ReplicaSync.Connecting)), Replica(B, 100, Sync(ReplicaSync.CatchingUp, 0, 0))]);
        Assert.Equal(Healthy, v.Word);
        Assert.Null(v.ResyncPercent);
        Assert.Equal([ReplicaLag.Primary, ReplicaLag.Current, ReplicaLag.Current], v.Replicas.Select(r => r.State));
        // Behind the head, the same follower states are still resyncing.
        Assert.Equal(Resyncing, Decide(Size, P, [Primary(), Replica(A, 90, Sync(ReplicaSync.Connecting)), Replica(B, 100)]).Word);
    }

    [Fact]
    public void A_replica_host_away_makes_the_volume_degraded_with_k_of_n_current_and_its_lag_from_its_last_known_head()
    {
        var v = Decide(Size, P, [Primary(lsn: 150), Replica(A, 150), Replica(B, 100, live: false, lagBytes: 50 * 4608)]);
        Assert.Equal(Degraded, v.Word);
        Assert.Equal((2, 3), (v.Current, v.Total));
        Assert.Equal(new ReplicaLag(B, ReplicaLag.Away, 50, 50 * 4608), v.Replicas[2]);
        var summary = new VolumeSummary("v", Size, VolumeMode.Sync, P, [P, A, B], "x", Health: v.Word, Lag: v.Replicas, CurrentReplicas: v.Current);
        Assert.Equal("degraded (2 of 3 current)", Describe(summary));
    }

    [Fact]
    public void No_primary_is_degraded_and_lag_is_unknown()
    {
        var v = Decide(Size, null, [Replica(A, 100), Replica(B, 90)]);
        Assert.Equal(Degraded, v.Word);
        Assert.All(v.Replicas, r => Assert.Null(r.LagEntries));
    }

    [Fact]
    public void A_full_resync_is_resyncing_with_the_share_of_the_volume_covered()
    {
        // A new replica holds no copy yet: its follower fetches the volume whole.
        var v = Decide(Size, P, [Primary(), new ReplicaInput(A, true, null, null, Sync(ReplicaSync.Resyncing, Size / 4), null), Replica(B, 100)]);
        Assert.Equal(Resyncing, v.Word);
        Assert.Equal(25, v.ResyncPercent);
        Assert.Equal(2, v.Current);
        Assert.Equal(ReplicaLag.Resyncing, v.Replicas[1].State);
        var summary = new VolumeSummary("v", Size, VolumeMode.Sync, P, [P, A, B], "x", Health: v.Word, Lag: v.Replicas, CurrentReplicas: v.Current, ResyncPercent: v.ResyncPercent);
        Assert.Equal("resyncing (25%)", Describe(summary));
    }

    [Fact]
    public void A_catch_up_is_resyncing_with_the_entries_applied_and_the_slowest_replica_counts()
    {
        var v = Decide(Size, P, [Primary(), Replica(A, 60, Sync(ReplicaSync.CatchingUp, 20, 40)), Replica(B, 90, Sync(ReplicaSync.CatchingUp, 30, 40))]);
        Assert.Equal(Resyncing, v.Word);
        Assert.Equal(50, v.ResyncPercent);
        Assert.Equal(40, v.Replicas[1].LagEntries);
    }

    [Fact]
    public void A_replica_behind_and_not_following_is_outdated()
    {
        Assert.Equal(Outdated, Decide(Size, P, [Primary(), Replica(A, 100), Replica(B, 80)]).Word);
        Assert.Equal(Outdated, Decide(Size, P, [Primary(), Replica(A, 100), Replica(B, 80, Sync(ReplicaSync.Retrying))]).Word);
        var v = Decide(Size, P, [Primary(), Replica(A, 100), Replica(B, 80)]);
        Assert.Equal(new ReplicaLag(B, ReplicaLag.Outdated, 20, null), v.Replicas[2]);
        Assert.Equal(2, v.Current);
    }

    [Fact]
    public void A_replica_that_holds_an_older_view_is_outdated_even_at_the_same_lsn()
    {
        var v = Decide(Size, P, [Primary(lsn: 100, view: 2), Replica(A, 100, view: 2), Replica(B, 100, view: 1)]);
        Assert.Equal(Outdated, v.Word);
        Assert.Equal(ReplicaLag.Outdated, v.Replicas[2].State);
    }

    [Fact]
    public void Damage_on_a_live_replica_outweighs_every_other_word()
    {
        Assert.Equal(Damaged, Decide(Size, P, [Primary(), Replica(A, 100, damaged: 512), Replica(B, 100)]).Word);
        Assert.Equal(Damaged, Decide(Size, P, [Primary(damaged: 4096), Replica(A, 100), Replica(B, 0, live: false)]).Word);
    }

    [Fact]
    public void Away_outweighs_outdated_which_outweighs_resyncing()
    {
        Assert.Equal(Degraded, Decide(Size, P, [Primary(), Replica(A, 10), Replica(B, 0, live: false)]).Word);
        Assert.Equal(Outdated, Decide(Size, P, [Primary(), Replica(A, 10), Replica(B, 50, Sync(ReplicaSync.CatchingUp, 1, 50))]).Word);
    }

    [Fact]
    public void A_single_replica_volume_is_healthy_on_its_own_and_one_host_knows_only_its_own_damage()
    {
        Assert.Equal(Healthy, Decide(Size, P, [Primary()]).Word);
        Assert.Equal(Damaged, OfLocal(Copy(1, damaged: 512)));
        Assert.Equal(Healthy, OfLocal(Copy(1)));
    }

    [Fact]
    public void Progress_never_reads_100_before_the_sync_is_done()
    {
        Assert.Equal(99, Percent(Sync(ReplicaSync.Resyncing, Size), Size));
        Assert.Equal(0, Percent(Sync(ReplicaSync.Connecting), Size));
        Assert.Equal(0, Percent(Sync(ReplicaSync.CatchingUp, 5, 0), Size));
    }
}
