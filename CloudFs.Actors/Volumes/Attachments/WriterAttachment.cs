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
                    return new AttachmentRefused($"volume {a.Volume}: this attachment's lease was revoked", Lost: true);
                if (_lease is null || _lease == a.Lease) return Grant(a.Lease, a.Holder, now);
                return new AttachmentRefused($"volume {a.Volume}: this attachment lost its lease; it is attached read-write by {_holder} now", Lost: true);
            }
            if (a.Force) return Grant(NewLease(), a.Holder, now);
            if (_lease is not null)
                return new AttachmentRefused($"volume {a.Volume} is attached read-write by {_holder} " +
                    $"(renewed {Seconds(now - (_expires - (long)term.TotalMilliseconds))} s ago; it lapses {Seconds((long)term.TotalMilliseconds)} s after its holder stops renewing)", Lost: false);
            if (now < graceUntil)
                return new AttachmentRefused($"volume {a.Volume}: its primary changed moments ago; a previous read-write holder may reclaim " +
                    $"its attachment for {Seconds(graceUntil - now)} s more", Lost: false, RetryAfterMs: graceUntil - now);
            return Grant(NewLease(), a.Holder, now);
        }
    }

    public AttachmentReleased Release(ReleaseAttachment r)
    {
        lock (_gate)
        {
            if (r.Lease is null)
            {
                // Revoked by an operator: its holder may not reclaim it, and whoever attaches next need not wait for a
                // previous primary's holder.
                graceUntil = 0;
                _revoked = _lease;
            }
            else if (r.Lease != _lease) return new AttachmentReleased(null);
            var holder = _holder;
            _lease = _holder = null;
            return new AttachmentReleased(holder);
        }
    }

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
