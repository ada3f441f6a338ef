// The sync volume's quorum rule on its own: writes wait for a majority holding them in their logs, FUA writes and
// flushes for a majority holding them durably; the primary counts as one; the compaction floor needs every replica.
using CloudFs.Actors.Volumes;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

public sealed class SyncQuorumTests
{
    private static List<(string Waiter, long Lsn)> Released(SyncQuorum<string> q)
    {
        var released = new List<(string, long)>();
        q.Release((w, lsn) => released.Add((w, lsn)));
        return released;
    }

    [Fact]
    public void With_three_replicas_a_write_waits_for_one_other_host_to_hold_it_and_a_fua_write_for_it_to_be_durable()
    {
        var q = new SyncQuorum<string>(3);
        var (b, c) = (Id160.Random(), Id160.Random());
        q.Wait("w5", 5, durable: false, now: 0);
        q.Wait("fua6", 6, durable: true, now: 0);
        q.Wait("w7", 7, durable: false, now: 0);
        Assert.Empty(Released(q));

        q.Acknowledged(b, feed: 1, written: 6, durable: 2);
        Assert.Equal([("w5", 5L)], Released(q));
        // Another host's report does not add up with the first: the best single host counts.
        q.Acknowledged(c, feed: 1, written: 4, durable: 4);
        Assert.Empty(Released(q));
        q.Acknowledged(c, feed: 1, written: 8, durable: 5);
        Assert.Equal([("w7", 7L)], Released(q));
        Assert.Equal(1, q.Waiting);
        q.Acknowledged(b, feed: 1, written: 6, durable: 6);
        Assert.Equal([("fua6", 6L)], Released(q));
        Assert.Equal(0, q.Waiting);
    }

    [Fact]
    public void A_view_change_keeps_the_waiting_requests_and_counts_only_the_reports_of_hosts_still_in_the_set()
    {
        var (primary, b, c, d) = (Id160.Random(), Id160.Random(), Id160.Random(), Id160.Random());
        var q = new SyncQuorum<string>(3);
        q.Wait("w10", 10, durable: false, now: 7);
        q.Wait("fua11", 11, durable: true, now: 9);
        q.Acknowledged(c, feed: 1, written: 20, durable: 8);
        // c is replaced by d: what c reported stops counting (it would release w10), the waits go on for the new set.
        var next = q.For([primary, b, d]);
        Assert.Equal(2, next.Waiting);
        Assert.Empty(Released(next));
        Assert.Null(next.DurableByAll);
        next.Acknowledged(d, feed: 1, written: 11, durable: 10);
        Assert.Equal([("w10", 10L)], Released(next));
        next.Acknowledged(b, feed: 1, written: 11, durable: 11);
        Assert.Equal([("fua11", 11L)], Released(next));
        // The time a wait started is kept: it expires as it would have.
        var expiring = new SyncQuorum<string>(3);
        expiring.Wait("old", 3, durable: false, now: 5);
        var expired = new List<string>();
        expiring.For([primary, b, d]).Expire(since: 5, (w, _) => expired.Add(w));
        Assert.Equal(["old"], expired);
    }

    [Fact]
    public void With_five_replicas_the_second_best_host_decides_and_reports_never_go_back()
    {
        var q = new SyncQuorum<string>(5);
        var hosts = Enumerable.Range(0, 4).Select(_ => Id160.Random()).ToArray();
        q.Wait("w10", 10, durable: false, now: 0);
        q.Acknowledged(hosts[0], feed: 1, written: 50, durable: 50);
        Assert.Empty(Released(q));
        q.Acknowledged(hosts[1], feed: 1, written: 9, durable: 9);
        Assert.Empty(Released(q));
        // A late, lower report changes nothing.
        q.Acknowledged(hosts[0], feed: 1, written: 3, durable: 3);
        q.Acknowledged(hosts[1], feed: 1, written: 10, durable: 0);
        Assert.Equal([("w10", 10L)], Released(q));
    }

    [Fact]
    public void A_flush_waiting_durably_does_not_hold_up_later_writes_and_waiters_leave_in_lsn_order()
    {
        var q = new SyncQuorum<string>(3);
        var b = Id160.Random();
        q.Wait("flush9", 9, durable: true, now: 0);
        q.Wait("w12", 12, durable: false, now: 0);
        q.Wait("w11", 11, durable: false, now: 0);
        q.Acknowledged(b, feed: 1, written: 12, durable: 8);
        Assert.Equal([("w11", 11L), ("w12", 12L)], Released(q));
        q.Acknowledged(b, feed: 1, written: 12, durable: 9);
        Assert.Equal([("flush9", 9L)], Released(q));
    }

    [Fact]
    public void A_single_replica_volume_never_waits_and_the_floor_needs_every_other_replica()
    {
        var one = new SyncQuorum<string>(1);
        one.Wait("w", 3, durable: true, now: 0);
        Assert.Equal([("w", 3L)], Released(one));
        Assert.Null(one.DurableByAll);

        var q = new SyncQuorum<string>(3);
        var (b, c) = (Id160.Random(), Id160.Random());
        q.Acknowledged(b, feed: 1, written: 20, durable: 15);
        Assert.Null(q.DurableByAll);
        q.Acknowledged(c, feed: 1, written: 30, durable: 12);
        Assert.Equal(12, q.DurableByAll);
    }

    [Fact]
    public void A_host_whose_feed_ended_no_longer_counts_until_its_next_feed_reports()
    {
        var q = new SyncQuorum<string>(3);
        var b = Id160.Random();
        q.Acknowledged(b, feed: 1, written: 10, durable: 10);
        q.Withdrawn(b, feed: 1);
        q.Wait("fua5", 5, durable: true, now: 0);
        Assert.Empty(Released(q));
        // A report of the ended feed that arrives after its end (they travel separately) is not counted either.
        q.Acknowledged(b, feed: 1, written: 10, durable: 10);
        Assert.Empty(Released(q));
        // The next connection counts from what it reports itself, not from what the last one did.
        q.Acknowledged(b, feed: 2, written: 4, durable: 4);
        Assert.Empty(Released(q));
        q.Acknowledged(b, feed: 2, written: 5, durable: 5);
        Assert.Equal([("fua5", 5L)], Released(q));
    }

    [Fact]
    public void A_newer_feed_replaces_an_older_ones_reports_and_the_older_ones_late_reports_and_end_change_nothing()
    {
        var q = new SyncQuorum<string>(3);
        var b = Id160.Random();
        q.Acknowledged(b, feed: 1, written: 50, durable: 50);
        q.Acknowledged(b, feed: 2, written: 3, durable: 3);
        q.Wait("w4", 4, durable: false, now: 0);
        Assert.Empty(Released(q));
        q.Acknowledged(b, feed: 1, written: 60, durable: 60);
        q.Withdrawn(b, feed: 1);
        Assert.Empty(Released(q));
        q.Acknowledged(b, feed: 2, written: 4, durable: 3);
        Assert.Equal([("w4", 4L)], Released(q));
    }

    [Fact]
    public void Waiters_no_majority_answered_in_time_are_given_up_and_the_others_still_wait()
    {
        var q = new SyncQuorum<string>(3);
        q.Wait("w5", 5, durable: false, now: 100);
        q.Wait("fua6", 6, durable: true, now: 200);
        q.Wait("w7", 7, durable: false, now: 300);
        var expired = new List<(string, long)>();
        q.Expire(since: 200, (w, lsn) => expired.Add((w, lsn)));
        Assert.Equal([("fua6", 6L), ("w5", 5L)], expired.OrderBy(e => e.Item1));
        Assert.Equal(1, q.Waiting);
        q.Acknowledged(Id160.Random(), feed: 1, written: 7, durable: 7);
        Assert.Equal([("w7", 7L)], Released(q));
        Assert.Equal(0, q.Waiting);
    }
}
