// One volume's read-write attachment lease on its primary: who holds it, until when, which leases are superseded (the
// fence), and whether a fresh holder must wait because the primary moved moments ago (the previous holder, still
// writing through the new primary, reclaims its lease by renewing it or by writing). O(1) per request; no member is
// asked. A write of the holder is admitted by one comparison, without the lock.
using System.Diagnostics;

namespace CloudFs.Actors.Volumes.Attachments;

/// <param name="term">A lease lapses this long after its last grant.</param>
/// <param name="view">The volume's view number when this record was made: a failover changes it, and a record of an
/// older view is not trusted (another primary may have granted the lease meanwhile). The leases this record grants are
/// (view &lt;&lt; 32) | a count: larger than any a writer of an earlier view granted.</param>
/// <param name="graceUntil">Until then (clock ticks of <paramref name="clock"/>) fresh holders wait: a holder of the
/// previous primary may reclaim.</param>
public sealed class WriterAttachment(TimeSpan term, long view, long graceUntil, Func<long> clock)
{
    private readonly object _gate = new();
    // The holder's lease (0: nobody holds it). Written under the gate, read without it by the write path.
    private long _lease;
    // Who holds it (meaningful while _lease is not 0), and the lease that name belongs to: a holder that reclaims its
    // lapsed lease by writing keeps its name.
    private string? _holder;
    // The client host of that holder (its address; null: unknown).
    private string? _client;
    private long _named;
    // The name its client gave the attachment of lease _named (null: none): asking afresh under it, the client gets
    // that lease back (it reconnected), unless the lease was superseded.
    private string? _name;
    // Names whose lease was superseded (revoked, or another holder took the volume): refused for good, the last
    // FencedNamesKept of them.
    private readonly HashSet<string> _fencedNames = new(StringComparer.Ordinal);
    private readonly Queue<string> _fencedOrder = new();
    private const int FencedNamesKept = 64;
    private long _expires;
    // No lease below this may write or be renewed: it is at least the last lease granted (or reclaimed) here, and one
    // past a lease its holder released or an operator revoked. Leases only grow, so a superseded holder stays fenced.
    private long _floor;
    // The last lease an operator revoked: its holder is told so (rather than "superseded").
    private long _revoked;
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

    /// <summary>Gives this record's unexpired lease, its fence and a revoked lease's refusal to <paramref name="next"/>,
    /// the record of the volume's next view on this node: its holder keeps writing across the view change, and a
    /// superseded one stays fenced.</summary>
    internal void HandOver(WriterAttachment next)
    {
        lock (_gate)
        {
            var now = clock();
            lock (next._gate)
            {
                next._revoked = _revoked;
                next._floor = Math.Max(next._floor, _floor);
                foreach (var name in _fencedOrder) next.FenceName(name);
                // A lapsed lease may still be taken back by its writes, its renewal or (named) its reconnection.
                if (_named >= _floor && _named != 0)
                {
                    next._holder = _holder;
                    next._client = _client;
                    next._named = _named;
                    next._name = _name;
                }
                if (_lease == 0 || now >= _expires) return;
                Volatile.Write(ref next._lease, _lease);
                next._expires = _expires;
            }
        }
    }

    /// <summary>Monotonic milliseconds, the default clock.</summary>
    public static long Now() => Stopwatch.GetTimestamp() * 1000 / Stopwatch.Frequency;

    /// <summary>
    /// Null when a write, zero-write or flush made under <paramref name="lease"/> (an attachment's epoch, never 0) may go
    /// on: its lease is the one held, or nobody newer holds it (it then holds it again: the primary moved, or it lapsed
    /// unclaimed, and its renewal would reclaim it too). Otherwise why it is refused: a newer holder took the volume, or
    /// the lease was revoked or released. The holder's own writes cost one comparison.
    /// </summary>
    public string? Refusal(long lease)
    {
        if (lease == Volatile.Read(ref _lease)) return null;
        lock (_gate)
        {
            var now = clock();
            if (Superseded(lease, now) is { } why) return why;
            if (lease != _lease) Hold(lease, null, now);
            return null;
        }
    }

    public AttachmentAnswer Acquire(AcquireAttachment a)
    {
        lock (_gate)
        {
            var now = clock();
            Lapse(now);
            if (a.Lease != 0)
            {
                // A renewal, or a reclaim when nobody newer holds it (the primary moved, or the lease lapsed unclaimed).
                if (Superseded(a.Lease, now) is { } why) return new AttachmentRefused($"volume {a.Volume}: {why}", Lost: true);
                return Grant(a.Lease, a.Holder, now, a.Probe, a.Name, a.Client);
            }
            if (a.Name is { } name)
            {
                // A named attachment asking afresh: its client reconnected (its node restarted, or it came through another).
                if (_fencedNames.Contains(name))
                    return new AttachmentRefused($"volume {a.Volume}: attachment {name} lost its read-write lease (`cloudfs detach` revoked it, " +
                        $"or another holder took the volume{(_lease != 0 ? $": it is attached read-write by {Holder} now" : "")}); it may not write again", Lost: true);
                if (name == _name && _named != 0 && _named >= _floor && (_lease == 0 || _lease == _named))
                    return Grant(_named, a.Holder, now, a.Probe, name, a.Client);
            }
            if (a.Force) return Grant(NewLease(), a.Holder, now, a.Probe, a.Name, a.Client);
            if (_lease != 0 && _holder is null)
                // Its holder took it back by writing (the primary moved) and names itself at its next renewal, within a
                // renewal interval: the asker waits for it, as for a previous primary's holder, and is then told who.
                return new AttachmentRefused($"volume {a.Volume} is attached read-write by {Holder}", Lost: false,
                    RetryAfterMs: Math.Max(1, Math.Min(_expires - now, (long)term.TotalMilliseconds / 3)));
            if (_lease != 0)
            {
                var held = $"volume {a.Volume} is attached read-write by {Holder} " +
                    $"(renewed {Seconds(now - (_expires - (long)term.TotalMilliseconds))} s ago; it lapses {Seconds((long)term.TotalMilliseconds)} s after its holder stops renewing)";
                // The same client through another node: it may have just closed that connection (nbdinfo through one
                // node, then qemu-io through another), its release on the way. The asker asks again for a moment.
                return a.Client is not null && a.Client == _client
                    ? new AttachmentRefused(held, Lost: false, RetryAfterMs: SameClientRetryMs, SameClient: true)
                    : new AttachmentRefused(held, Lost: false);
            }
            if (now < graceUntil)
                return new AttachmentRefused($"volume {a.Volume}: its primary changed moments ago, and its previous read-write holder may reclaim it " +
                    $"for {Seconds(graceUntil - now)} s more", Lost: false, RetryAfterMs: graceUntil - now);
            return Grant(NewLease(), a.Holder, now, a.Probe, a.Name, a.Client);
        }
    }

    /// <summary>How soon a client that holds the lease through another node asks again.</summary>
    private const long SameClientRetryMs = 100;

    /// <summary>
    /// Ends the holder's own lease (<see cref="ReleaseAttachment.Lease"/>), or, for `cloudfs detach` (no lease), whichever
    /// is held: with <see cref="ReleaseAttachment.Force"/> always, without it only when its holder stopped renewing
    /// (refused while a live holder renews). An ended lease is fenced: its writes and renewals are refused from then on,
    /// however late they arrive, so the next holder gets the volume at once (its holder is told at its next renewal or
    /// write, and its connection closes).
    /// </summary>
    public AttachmentReleased Release(ReleaseAttachment r)
    {
        lock (_gate)
        {
            var now = clock();
            Lapse(now);
            if (r.Lease != 0)
            {
                var leaving = r.Lease == _lease ? Holder : null;
                // Its holder closed every connection of it. A named attachment may reconnect to it (until a newer holder
                // comes: that fences it); nothing of an unnamed one may write again.
                if (r.Lease == _named && _name is not null)
                {
                    if (r.Lease == _lease) Volatile.Write(ref _lease, 0);
                }
                else Fence(r.Lease + 1);
                return new AttachmentReleased(leaving);
            }
            if (_lease == 0)
            {
                // Nothing held: a previous primary's holder (if any) may not reclaim either, and whoever attaches next
                // need not wait for it. A named attachment whose connections broke may not reconnect either.
                graceUntil = 0;
                if (_name is null || _named == 0 || _named < _floor) return new AttachmentReleased(null);
                var reconnecting = $"{Holder} (attachment {_name}, disconnected)";
                _revoked = _named;
                Fence(_named + 1);
                return new AttachmentReleased(reconnecting);
            }
            var renewedAgo = now - (_expires - (long)term.TotalMilliseconds);
            if (!r.Force && renewedAgo < StaleAfter)
                return new AttachmentReleased(null, $"volume {r.Volume} is attached read-write by {Holder}, which renewed it {Seconds(renewedAgo)} s ago " +
                    "(it is alive); `cloudfs detach --force` revokes it and closes that client's connection");
            var holder = Holder;
            _revoked = _lease;
            // Nothing of it can land any more: no fresh holder waits for it (nor for a previous primary's: that one
            // was detached too, or never reclaimed).
            graceUntil = 0;
            Fence(_lease + 1);
            return new AttachmentReleased(holder);
        }
    }

    /// <summary>A holder renews every third of the term: one that has not renewed for half the term is gone (its node
    /// died or is cut off, and its connection with it).</summary>
    private long StaleAfter => (long)term.TotalMilliseconds / 2;

    /// <summary>Under the gate: null when <paramref name="lease"/> holds the attachment or may take it back (nobody newer
    /// held it here); otherwise why not.</summary>
    private string? Superseded(long lease, long now)
    {
        Lapse(now);
        if (lease == _lease) return null;
        if (lease == _revoked) return "this attachment's lease was revoked (`cloudfs detach`)" + (_lease != 0 ? WhoNow() : "");
        if (lease < _floor) return $"this attachment lost its lease{WhoNow()}";
        // Newer than the holder's (a holder of an older lease reclaimed it here first, after the primary moved): the
        // newer one is the rightful holder, and the older one is told at its next renewal.
        return null;

        string WhoNow() => _lease != 0 ? $"; it is attached read-write by {Holder} now" : " (it ended, or a newer holder had it)";
    }

    /// <summary>Who holds the lease, as a second attacher is told.</summary>
    private string Holder => _holder ?? $"the holder of lease {_lease:x} (it took it back by writing after the volume's primary moved; named at its next renewal)";

    private void Lapse(long now)
    {
        if (_lease != 0 && now >= _expires)
        {
            // Lapsed unclaimed: its holder may still reclaim it (nobody newer has it), so it is not fenced.
            Volatile.Write(ref _lease, 0);
        }
    }

    /// <summary>No lease below <paramref name="floor"/> may write again; a holder below it loses the attachment, and the
    /// name of a superseded attachment is refused from then on.</summary>
    private void Fence(long floor)
    {
        _floor = Math.Max(_floor, floor);
        if (_lease != 0 && _lease < _floor) Volatile.Write(ref _lease, 0);
        if (_named != 0 && _named < _floor && _name is { } name) FenceName(name);
    }

    private void FenceName(string name)
    {
        if (!_fencedNames.Add(name)) return;
        _fencedOrder.Enqueue(name);
        if (_fencedOrder.Count > FencedNamesKept) _fencedNames.Remove(_fencedOrder.Dequeue());
    }

    private AttachmentGranted Grant(long lease, string holder, long now, bool probe, string? name, string? client)
    {
        if (!probe) Hold(lease, holder, now, name, client);
        return new AttachmentGranted(lease, (long)term.TotalMilliseconds);
    }

    /// <param name="holder">Null: a write reclaims the lease (its holder is named at its next renewal, unless known).</param>
    /// <param name="name">The attachment's name (null: unknown, or none).</param>
    private void Hold(long lease, string? holder, long now, string? name = null, string? client = null)
    {
        Fence(lease);
        _client = holder is not null ? client : _named == lease ? _client : null;
        _holder = holder ?? (_named == lease ? _holder : null);
        _name = name ?? (_named == lease ? _name : null);
        _named = lease;
        _expires = now + (long)term.TotalMilliseconds;
        Volatile.Write(ref _lease, lease);
    }

    /// <summary>A lease larger than any granted before, here or by a writer of an earlier view.</summary>
    private long NewLease() => Math.Max((view << 32) | ++_counter, _floor + 1);

    private static string Seconds(long ms) => (Math.Max(0, ms) / 1000.0).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
}
