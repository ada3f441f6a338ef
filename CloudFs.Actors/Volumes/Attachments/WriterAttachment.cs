// One volume's read-write attachment lease on its primary: who holds it, until when, and whether a fresh holder must
// wait because the primary moved moments ago (the previous holder, still writing through the new primary, reclaims
// its lease by renewing it). O(1) per request; no member is asked.
using System.Diagnostics;

namespace CloudFs.Actors.Volumes.Attachments;

/// <param name="term">A lease lapses this long after its last grant.</param>
/// <param name="view">The volume's view number when this record was made: a failover changes it, and a record of an
/// older view is not trusted (another primary may have granted the lease meanwhile).</param>
/// <param name="graceUntil">Until then (clock ticks of <paramref name="clock"/>) fresh holders wait: a holder of the
/// previous primary may reclaim.</param>
public sealed class WriterAttachment(TimeSpan term, long view, long graceUntil, Func<long> clock)
{
    private readonly object _gate = new();
    private string? _lease;
    private string? _holder;
    private long _expires;
    // The last lease an operator revoked: its holder's renewal is refused, not taken for a reclaim.
    private string? _revoked;
    // The request being answered only asks (NBD_OPT_INFO): a grant changes nothing.
    private bool _probing;
    private long _counter;

    public long View => view;

    /// <summary>True while fresh holders wait for a previous primary's holder to reclaim.</summary>
    public bool InGrace { get { lock (_gate) return clock() < graceUntil; } }

    /// <summary>No previous holder can reclaim (no member serves a read-write attachment of the volume): fresh holders
    /// need not wait.</summary>
    public void EndGrace()
    {
        lock (_gate) graceUntil = 0;
    }

    /// <summary>Gives this record's unexpired lease (and a revoked one's refusal) to <paramref name="next"/>, the record
    /// of the volume's next view on this node: its holder keeps writing across the view change.</summary>
    internal void HandOver(WriterAttachment next)
    {
        lock (_gate)
        {
            var now = clock();
            lock (next._gate)
            {
                next._revoked = _revoked;
                if (_lease is null || now >= _expires) return;
                next._lease = _lease;
                next._holder = _holder;
                next._expires = _expires;
            }
        }
    }

    /// <summary>Monotonic milliseconds, the default clock.</summary>
    public static long Now() => Stopwatch.GetTimestamp() * 1000 / Stopwatch.Frequency;

    public AttachmentAnswer Acquire(AcquireAttachment a)
    {
        lock (_gate)
        {
            _probing = a.Probe;
            var now = clock();
            if (_lease is not null && now >= _expires) _lease = _holder = null;
            if (a.Lease is not null)
            {
                // A renewal, or a reclaim when nobody holds it (the primary moved, or the lease lapsed unclaimed).
                if (a.Lease == _revoked)
                {
                    // Told now: its connection closes rather than write again, so fresh holders need not wait for it.
                    if (!_probing && _lease is null) graceUntil = 0;
                    return new AttachmentRefused($"volume {a.Volume}: this attachment's lease was revoked (`cloudfs detach`)", Lost: true);
                }
                if (_lease is null || _lease == a.Lease) return Grant(a.Lease, a.Holder, now);
                return new AttachmentRefused($"volume {a.Volume}: this attachment lost its lease; it is attached read-write by {_holder} now", Lost: true);
            }
            if (a.Force) return Grant(NewLease(), a.Holder, now);
            if (_lease is not null)
                return new AttachmentRefused($"volume {a.Volume} is attached read-write by {_holder} " +
                    $"(renewed {Seconds(now - (_expires - (long)term.TotalMilliseconds))} s ago; it lapses {Seconds((long)term.TotalMilliseconds)} s after its holder stops renewing)", Lost: false);
            if (now < graceUntil)
                return new AttachmentRefused($"volume {a.Volume}: its previous read-write holder may still write (its primary changed moments ago, " +
                    $"or it was detached and has not been told yet) for {Seconds(graceUntil - now)} s more", Lost: false, RetryAfterMs: graceUntil - now);
            return Grant(NewLease(), a.Holder, now);
        }
    }

    /// <summary>
    /// Ends the holder's own lease (<see cref="ReleaseAttachment.Lease"/>), or, for `cloudfs detach` (no lease), whichever
    /// is held: with <see cref="ReleaseAttachment.Force"/> always, without it only when its holder stopped renewing
    /// (refused while a live holder renews). A detached holder's renewal is refused (its connection closes), and fresh
    /// holders wait until it has been told so, or until its lease would have lapsed.
    /// </summary>
    public AttachmentReleased Release(ReleaseAttachment r)
    {
        lock (_gate)
        {
            var now = clock();
            if (_lease is not null && now >= _expires) _lease = _holder = null;
            if (r.Lease is not null)
            {
                if (r.Lease != _lease) return new AttachmentReleased(null);
                var leaving = _holder;
                _lease = _holder = null;
                return new AttachmentReleased(leaving);
            }
            if (_lease is null)
            {
                // Nothing to revoke: a previous primary's holder (if any) may not reclaim either, and whoever attaches
                // next need not wait for it.
                graceUntil = 0;
                return new AttachmentReleased(null);
            }
            var renewedAgo = now - (_expires - (long)term.TotalMilliseconds);
            if (!r.Force && renewedAgo < StaleAfter)
                return new AttachmentReleased(null, $"volume {r.Volume} is attached read-write by {_holder}, which renewed it {Seconds(renewedAgo)} s ago " +
                    "(it is alive); `cloudfs detach --force` revokes it and closes that client's connection");
            var holder = _holder;
            _revoked = _lease;
            graceUntil = _expires;
            _lease = _holder = null;
            return new AttachmentReleased(holder);
        }
    }

    /// <summary>A holder renews every third of the term: one that has not renewed for half the term is gone (its node
    /// died or is cut off, and its connection with it).</summary>
    private long StaleAfter => (long)term.TotalMilliseconds / 2;

    private AttachmentGranted Grant(string lease, string holder, long now)
    {
        if (_probing) return new AttachmentGranted(lease, (long)term.TotalMilliseconds);
        _lease = lease;
        _holder = holder;
        _expires = now + (long)term.TotalMilliseconds;
        return new AttachmentGranted(lease, (long)term.TotalMilliseconds);
    }

    private string NewLease() => $"{Guid.NewGuid():N}-{++_counter}";

    private static string Seconds(long ms) => (Math.Max(0, ms) / 1000.0).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
}
