// The lease a volume's writer keeps for its one read-write attachment, on a clock the test moves.
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Tests.Support;

namespace CloudFs.Tests.Actors;

public class WriterAttachmentTests
{
    private const string Volume = "00112233445566778899aabbccddeeff00112233";
    private static readonly TimeSpan Term = TimeSpan.FromSeconds(9);
    private long _now = 1_000_000;

    // A record of view 1: the leases it grants are (1 << 32) | n, above any of view 0's.
    private WriterAttachment Make(long graceMs = 0) => new(Term, 1, _now + graceMs, () => _now);

    /// <summary>A lease a writer of an earlier view (the previous primary) granted.</summary>
    private const long OldPrimarysLease = 5;

    private static AcquireAttachment Fresh(string holder, bool force = false) => new(Volume, holder, 0, force);

    [Fact]
    public void One_holder_at_a_time_and_the_second_is_told_who()
    {
        var lease = Make();
        var a = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A")));
        var refused = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B")));
        Assert.Contains("attached read-write by A", refused.Reason);
        Assert.False(refused.Lost);
        // Renewals keep it; release frees it for the next.
        _now += 8_000;
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A") with { Lease = a.Lease }));
        _now += 8_000;
        Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B")));
        Assert.Equal("A", lease.Release(new ReleaseAttachment(Volume, a.Lease)).Holder);
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B")));
    }

    [Fact]
    public void The_holders_own_client_through_another_node_is_told_to_ask_again_and_another_client_is_not()
    {
        var lease = Make();
        var a = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("client 10.0.0.5 through node 1") with { Client = "10.0.0.5" }));
        // Its connection through node 1 may be ending (its release on the way): the same client through node 2 asks again.
        var same = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("client 10.0.0.5 through node 2") with { Client = "10.0.0.5" }));
        Assert.True(same.SameClient);
        Assert.True(same.RetryAfterMs > 0);
        Assert.Contains("attached read-write by client 10.0.0.5 through node 1", same.Reason);
        var other = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("client 10.0.0.6 through node 2") with { Client = "10.0.0.6" }));
        Assert.False(other.SameClient);
        Assert.Equal(0, other.RetryAfterMs);
        // A renewal keeps the client; once released, the same client takes it through node 2.
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("client 10.0.0.5 through node 1") with { Lease = a.Lease, Client = "10.0.0.5" }));
        Assert.True(Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("client 10.0.0.5 through node 2") with { Client = "10.0.0.5" })).SameClient);
        lease.Release(new ReleaseAttachment(Volume, a.Lease));
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("client 10.0.0.5 through node 2") with { Client = "10.0.0.5" }));
    }

    [Fact]
    public void A_probe_says_what_an_acquire_would_get_and_takes_nothing()
    {
        var lease = Make();
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A") with { Probe = true }));
        var b = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B")));
        Assert.Contains("attached read-write by B", Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("A") with { Probe = true })).Reason);
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B") with { Lease = b.Lease }));
    }

    [Fact]
    public void A_holder_that_stops_renewing_lapses_and_then_loses_it_to_the_next()
    {
        var lease = Make();
        var a = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A")));
        _now += (long)Term.TotalMilliseconds;
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B")));
        var lost = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("A") with { Lease = a.Lease }));
        Assert.True(lost.Lost);
        Assert.Contains("attached read-write by B now", lost.Reason);
    }

    [Fact]
    public void Force_takes_it_over_and_the_old_holder_loses_it()
    {
        var lease = Make();
        var a = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A")));
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B", force: true)));
        Assert.True(Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("A") with { Lease = a.Lease })).Lost);
    }

    [Fact]
    public void After_the_primary_moved_only_the_previous_holder_gets_in_during_the_grace()
    {
        // A new primary's record: nobody known, but a holder of the old primary may still write through this one.
        var lease = Make(graceMs: (long)Term.TotalMilliseconds);
        var wait = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B")));
        Assert.True(wait.RetryAfterMs > 0);
        Assert.Contains("primary changed moments ago", wait.Reason);
        // The old holder renews with the lease the old primary granted: reclaimed, and B is refused for good.
        var reclaim = new AcquireAttachment(Volume, "A", OldPrimarysLease);
        Assert.IsType<AttachmentGranted>(lease.Acquire(reclaim));
        _now += 5_000;
        Assert.IsType<AttachmentGranted>(lease.Acquire(reclaim));
        _now += 5_000;
        Assert.Equal(0, Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B"))).RetryAfterMs);
    }

    [Fact]
    public void When_no_member_serves_the_volume_read_write_the_grace_ends_at_once()
    {
        // The new primary asked every member (ReadWriteAttachmentCensus): nobody can reclaim, so nobody waits.
        var lease = Make(graceMs: (long)Term.TotalMilliseconds);
        Assert.True(lease.InGrace);
        Assert.True(Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B"))).RetryAfterMs > 0);
        lease.EndGrace();
        Assert.False(lease.InGrace);
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B")));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_new_view_keeps_fresh_holders_out_only_while_a_member_may_hold_the_volume(bool noneAttached)
    {
        var asked = new TaskCompletionSource<bool>();
        var attachments = new WriterAttachments(_ => asked.Task);
        var volume = CloudFs.BlockDevice.Id160.Parse(Volume);
        var record = attachments.For(volume, view: 2);
        Assert.Same(record, attachments.For(volume, view: 2));
        Assert.True(Assert.IsType<AttachmentRefused>(record.Acquire(Fresh("B"))).RetryAfterMs > 0);
        asked.SetResult(noneAttached);
        if (noneAttached)
        {
            await Eventually.Until(() => !record.InGrace, TimeSpan.FromSeconds(5), "the grace to end once nobody holds the volume");
            Assert.IsType<AttachmentGranted>(record.Acquire(Fresh("B")));
        }
        else
        {
            // A member serves a read-write attachment: its holder reclaims within a renewal; until then nobody else.
            Assert.True(Assert.IsType<AttachmentRefused>(record.Acquire(Fresh("B"))).RetryAfterMs > 0);
            Assert.IsType<AttachmentGranted>(record.Acquire(new AcquireAttachment(Volume, "A", OldPrimarysLease)));
            Assert.Equal(0, Assert.IsType<AttachmentRefused>(record.Acquire(Fresh("B"))).RetryAfterMs);
        }
    }

    [Fact]
    public async Task A_view_change_on_the_same_writer_keeps_the_holders_lease_and_keeps_others_out()
    {
        // E.g. a take-over whose view number becomes current once its entry commits: the holder that reclaimed the lease
        // in the record of the old number keeps it in the new one.
        var attachments = new WriterAttachments(_ => Task.FromResult(true));
        var volume = CloudFs.BlockDevice.Id160.Parse(Volume);
        var first = attachments.For(volume, view: 0);
        await Eventually.Until(() => !first.InGrace, TimeSpan.FromSeconds(5), "the census of a new volume to end the grace");
        var a = Assert.IsType<AttachmentGranted>(first.Acquire(Fresh("A")));
        var next = attachments.For(volume, view: 1);
        Assert.NotSame(first, next);
        Assert.Contains("attached read-write by A", Assert.IsType<AttachmentRefused>(next.Acquire(Fresh("B"))).Reason);
        Assert.IsType<AttachmentGranted>(next.Acquire(Fresh("A") with { Lease = a.Lease }));
    }

    [Fact]
    public void With_no_previous_holder_the_grace_ends_and_a_new_holder_gets_in()
    {
        var lease = Make(graceMs: 3_000);
        Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B")));
        _now += 3_000;
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B")));
    }

    [Fact]
    public void Detach_revokes_whichever_lease_is_held_and_ends_the_grace()
    {
        var lease = Make(graceMs: 3_000);
        Assert.Null(lease.Release(new ReleaseAttachment(Volume, 0)).Holder);
        var b = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B") with { Lease = 0 }));
        Assert.Equal("B", lease.Release(new ReleaseAttachment(Volume, 0, Force: true)).Holder);
        // B's renewal is refused (it must stop writing), not taken for a reclaim.
        Assert.True(Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B") with { Lease = b.Lease })).Lost);
    }

    [Fact]
    public void Detach_without_force_is_refused_while_the_holder_renews_and_ends_a_holder_that_stopped()
    {
        var lease = Make();
        var a = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A")));
        _now += 3_000;
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A") with { Lease = a.Lease }));
        _now += 1_000;
        var refused = lease.Release(new ReleaseAttachment(Volume, 0));
        Assert.Null(refused.Holder);
        Assert.Contains("attached read-write by A, which renewed it 1 s ago", refused.Refusal);
        Assert.Contains("--force", refused.Refusal);
        Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A") with { Lease = a.Lease }));
        // A stops renewing (its node died, or is cut off): after half a term it is taken for gone.
        _now += (long)Term.TotalMilliseconds / 2;
        var detached = lease.Release(new ReleaseAttachment(Volume, 0));
        Assert.Equal("A", detached.Holder);
        Assert.Null(detached.Refusal);
        Assert.True(Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("A") with { Lease = a.Lease })).Lost);
    }

    [Fact]
    public void After_a_forced_detach_the_next_holder_gets_in_at_once_and_the_old_one_is_fenced()
    {
        var lease = Make();
        var a = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A")));
        _now += 1_000;
        Assert.Equal("A", lease.Release(new ReleaseAttachment(Volume, 0, Force: true)).Holder);
        // A may not have been told yet, but nothing it sends can land any more: B need not wait.
        var b = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B")));
        Assert.Contains("revoked", lease.Refusal(a.Lease));
        Assert.Null(lease.Refusal(b.Lease));
        var told = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("A") with { Lease = a.Lease }));
        Assert.True(told.Lost);
        Assert.Contains("revoked", told.Reason);
    }

    [Fact]
    public void A_write_under_a_superseded_lease_is_refused_and_the_holders_is_admitted()
    {
        var lease = Make();
        var a = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("A")));
        Assert.Null(lease.Refusal(a.Lease));
        // Taken over: A's writes are refused however late they come, B's pass.
        var b = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("B", force: true)));
        Assert.True(b.Lease > a.Lease);
        Assert.Contains("it is attached read-write by B now", lease.Refusal(a.Lease));
        Assert.Null(lease.Refusal(b.Lease));
        _now += 100_000;
        Assert.NotNull(lease.Refusal(a.Lease));
        // B's lease lapsed unclaimed: its writes still pass (nobody newer holds the volume; its renewal would reclaim
        // it too), and it holds the volume again.
        Assert.Null(lease.Refusal(b.Lease));
        Assert.Contains("attached read-write by B", Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("C"))).Reason);
        // Released by its holder (its connections closed): nothing of it may write again.
        Assert.Equal("B", lease.Release(new ReleaseAttachment(Volume, b.Lease)).Holder);
        Assert.Contains("lost its lease", lease.Refusal(b.Lease));
        var c = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("C")));
        Assert.Null(lease.Refusal(c.Lease));
        Assert.NotNull(lease.Refusal(b.Lease));
    }

    [Fact]
    public void After_the_primary_moved_a_holder_writes_on_and_a_newer_lease_wins_over_an_older_one()
    {
        // The new primary knows no lease. The holder's writes go on through it (they reclaim the lease), and once a
        // lease is known here every older one is fenced.
        var lease = Make(graceMs: (long)Term.TotalMilliseconds);
        const long older = 3, newer = 4; // both granted by the previous primary: 3 was superseded by 4 there
        Assert.Null(lease.Refusal(older));
        Assert.Null(lease.Refusal(newer));
        Assert.Contains("lost its lease", lease.Refusal(older));
        Assert.True(Assert.IsType<AttachmentRefused>(lease.Acquire(new AcquireAttachment(Volume, "A", older))).Lost);
        Assert.IsType<AttachmentGranted>(lease.Acquire(new AcquireAttachment(Volume, "B", newer)));
        // A fresh holder after the grace gets a lease above both, and fences them.
        _now += (long)Term.TotalMilliseconds;
        var c = Assert.IsType<AttachmentGranted>(lease.Acquire(Fresh("C", force: true)));
        Assert.True(c.Lease > newer);
        Assert.NotNull(lease.Refusal(newer));
    }

    [Fact]
    public void The_next_view_keeps_the_fence()
    {
        var attachments = new WriterAttachments(_ => Task.FromResult(true));
        var volume = CloudFs.BlockDevice.Id160.Parse(Volume);
        var first = attachments.For(volume, view: 1);
        var a = Assert.IsType<AttachmentGranted>(first.Acquire(Fresh("A", force: true)));
        var b = Assert.IsType<AttachmentGranted>(first.Acquire(Fresh("B", force: true)));
        var next = attachments.For(volume, view: 2);
        Assert.NotNull(next.Refusal(a.Lease));
        Assert.NotNull(attachments.Refusal(volume, a.Lease));
        Assert.Null(next.Refusal(b.Lease));
        var c = Assert.IsType<AttachmentGranted>(next.Acquire(Fresh("C", force: true)));
        Assert.True(c.Lease > b.Lease);
    }

    private static AcquireAttachment Named(string holder, string name) => new(Volume, holder, 0, Name: name);

    [Fact]
    public void A_named_attachment_asking_afresh_gets_its_own_lease_back_until_it_is_superseded()
    {
        var lease = Make();
        var m1 = Assert.IsType<AttachmentGranted>(lease.Acquire(Named("A through n1", "m1")));
        // Its connection broke and its node restarted (the node forgot it held the lease), or it came through another node.
        Assert.Equal(m1.Lease, Assert.IsType<AttachmentGranted>(lease.Acquire(Named("A through n1", "m1"))).Lease);
        Assert.Equal(m1.Lease, Assert.IsType<AttachmentGranted>(lease.Acquire(Named("A through n2", "m1"))).Lease);
        Assert.Contains("attached read-write by A through n2", Assert.IsType<AttachmentRefused>(lease.Acquire(Named("B", "m2"))).Reason);
        // Its connections all closed (a reconnection closes the old one first): it may still come back to its lease.
        Assert.Equal("A through n2", lease.Release(new ReleaseAttachment(Volume, m1.Lease)).Holder);
        Assert.Equal(m1.Lease, Assert.IsType<AttachmentGranted>(lease.Acquire(Named("A through n1", "m1"))).Lease);
        Assert.Null(lease.Refusal(m1.Lease));

        // Taken over: the name is refused for good (its client must not write again: another had the volume), and so
        // is its lease, even once the new holder has gone.
        var b = Assert.IsType<AttachmentGranted>(lease.Acquire(Named("B", "m2") with { Force = true }));
        var refused = Assert.IsType<AttachmentRefused>(lease.Acquire(Named("A through n1", "m1")));
        Assert.True(refused.Lost);
        Assert.Contains("attachment m1 lost its read-write lease", refused.Reason);
        Assert.NotNull(lease.Refusal(m1.Lease));
        lease.Release(new ReleaseAttachment(Volume, b.Lease));
        _now += 100_000;
        Assert.True(Assert.IsType<AttachmentRefused>(lease.Acquire(Named("A through n1", "m1"))).Lost);
        // A fresh name gets a fresh lease.
        Assert.True(Assert.IsType<AttachmentGranted>(lease.Acquire(Named("A through n1", "m3"))).Lease > b.Lease);
    }

    [Fact]
    public void A_revoked_named_attachment_is_refused_when_it_reconnects_and_the_next_view_remembers_it()
    {
        var attachments = new WriterAttachments(_ => Task.FromResult(true));
        var volume = CloudFs.BlockDevice.Id160.Parse(Volume);
        var record = attachments.For(volume, view: 1);
        Assert.IsType<AttachmentGranted>(record.Acquire(Named("A", "m1") with { Force = true }));
        Assert.Equal("A", record.Release(new ReleaseAttachment(Volume, 0, Force: true)).Holder);
        Assert.Contains("`cloudfs detach` revoked it", Assert.IsType<AttachmentRefused>(record.Acquire(Named("A", "m1"))).Reason);
        var next = attachments.For(volume, view: 2);
        Assert.True(Assert.IsType<AttachmentRefused>(next.Acquire(Named("A", "m1"))).Lost);
    }

    [Fact]
    public void A_holder_that_took_the_lease_back_by_writing_is_waited_for_until_its_renewal_names_it()
    {
        // After a failover the holder's writes reach the new primary before its renewal does: the lease is its again,
        // but its name is not known yet. A second attacher waits (as in the failover grace) and is then told who holds it.
        var lease = Make();
        const long held = 9;
        Assert.Null(lease.Refusal(held));
        var wait = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B")));
        Assert.True(wait.RetryAfterMs > 0);
        Assert.False(wait.Lost);
        Assert.IsType<AttachmentGranted>(lease.Acquire(new AcquireAttachment(Volume, "A", held)));
        var refused = Assert.IsType<AttachmentRefused>(lease.Acquire(Fresh("B")));
        Assert.Equal(0, refused.RetryAfterMs);
        Assert.Contains("attached read-write by A", refused.Reason);
    }
}
