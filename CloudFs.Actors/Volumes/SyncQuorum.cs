// Who holds what of a sync volume: the written and durable heads each other host of the replica set reported on its
// current feed connection, and the requests waiting for a majority to hold an lsn (writes: in its log; FUA writes and
// flushes: durably), each for a bounded time. A host counts only while its feed is connected, and only for what that
// feed reported.
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

internal sealed class SyncQuorum<T>(int replicaCount)
{
    private readonly Dictionary<Id160, (long Feed, long Written, long Durable)> _held = new();
    // The newest feed of each host known to have ended: a report of it that arrives after its end is not counted.
    private readonly Dictionary<Id160, long> _ended = new();
    private readonly PriorityQueue<(T Waiter, long Since), long> _awaitingWritten = new();
    private readonly PriorityQueue<(T Waiter, long Since), long> _awaitingDurable = new();
    // This host counts as one of the majority (its own write is stored before it waits here).
    private readonly int _others = Placement.Majority(replicaCount) - 1;

    public int Waiting => _awaitingWritten.Count + _awaitingDurable.Count;

    /// <summary>Another host of the replica set holds the volume up to <paramref name="written"/>, durably up to
    /// <paramref name="durable"/>, as reported on its feed connection <paramref name="feed"/> (feeds are numbered in the
    /// order they connected). Reports of one feed may come out of order: the highest counts. A newer feed of the host
    /// replaces what an older one reported (it counts from its own reports); late reports of an older feed are ignored.</summary>
    public void Acknowledged(Id160 host, long feed, long written, long durable)
    {
        if (_ended.GetValueOrDefault(host) >= feed || (_held.TryGetValue(host, out var had) && had.Feed > feed)) return;
        if (had.Feed != feed) had = (feed, 0, 0);
        _held[host] = (feed, Math.Max(had.Written, Math.Max(written, durable)), Math.Max(had.Durable, durable));
    }

    /// <summary>The host's feed <paramref name="feed"/> ended: what it reported no longer counts (a newer feed's does).</summary>
    public void Withdrawn(Id160 host, long feed)
    {
        if (_held.TryGetValue(host, out var had) && had.Feed == feed) _held.Remove(host);
        if (_ended.GetValueOrDefault(host) < feed) _ended[host] = feed;
    }

    /// <summary><paramref name="waiter"/> is released once a majority holds <paramref name="lsn"/> (durably when asked),
    /// or given up by <see cref="Expire"/>; <paramref name="now"/> in <see cref="Environment.TickCount64"/> ms.</summary>
    public void Wait(T waiter, long lsn, bool durable, long now) =>
        (durable ? _awaitingDurable : _awaitingWritten).Enqueue((waiter, now), lsn);

    /// <summary>Hands every waiter that has waited since <paramref name="since"/> or longer to <paramref name="expire"/>
    /// with its lsn, and forgets it.</summary>
    public void Expire(long since, Action<T, long> expire)
    {
        Expire(_awaitingWritten, since, expire);
        Expire(_awaitingDurable, since, expire);
    }

    private static void Expire(PriorityQueue<(T Waiter, long Since), long> waiting, long since, Action<T, long> expire)
    {
        var any = false;
        foreach (var (w, _) in waiting.UnorderedItems)
            if (w.Since <= since) { any = true; break; }
        if (!any) return;
        var all = waiting.UnorderedItems.ToArray();
        waiting.Clear();
        foreach (var (w, lsn) in all)
            if (w.Since <= since) expire(w.Waiter, lsn);
            else waiting.Enqueue(w, lsn);
    }

    /// <summary>Every waiter a majority now holds for, with its lsn.</summary>
    public void Release(Action<T, long> release)
    {
        if (Waiting == 0 || _held.Count < _others) return;
        Release(_awaitingWritten, Held(static h => h.Written), release);
        Release(_awaitingDurable, Held(static h => h.Durable), release);
    }

    /// <summary>Hands every waiter to <paramref name="abandon"/> and forgets it (the actor that holds them stops).</summary>
    public void Abandon(Action<T> abandon)
    {
        while (_awaitingWritten.TryDequeue(out var w, out _)) abandon(w.Waiter);
        while (_awaitingDurable.TryDequeue(out var d, out _)) abandon(d.Waiter);
    }

    /// <summary>
    /// The quorum of a new replica set <paramref name="replicas"/> (a view change): the requests still waiting wait on
    /// (for the new majority, since when they started), and only the reports of hosts still in the set count.
    /// </summary>
    public SyncQuorum<T> For(IReadOnlyCollection<Id160> replicas)
    {
        var next = new SyncQuorum<T>(Math.Max(1, replicas.Count));
        foreach (var (host, held) in _held)
            if (replicas.Contains(host)) next._held[host] = held;
        foreach (var (host, feed) in _ended)
            if (replicas.Contains(host)) next._ended[host] = feed;
        foreach (var (w, lsn) in _awaitingWritten.UnorderedItems) next._awaitingWritten.Enqueue(w, lsn);
        foreach (var (w, lsn) in _awaitingDurable.UnorderedItems) next._awaitingDurable.Enqueue(w, lsn);
        return next;
    }

    /// <summary>The lowest lsn every other host of the replica set holds durably, once each has reported (else null).</summary>
    public long? DurableByAll => _held.Count > 0 && _held.Count >= replicaCount - 1 ? _held.Values.Min(h => h.Durable) : null;

    private long Held(Func<(long Feed, long Written, long Durable), long> of)
    {
        if (_others <= 0) return long.MaxValue;
        // The common case (3 replicas: one other host needed) is the highest report, without sorting.
        if (_others == 1) return _held.Values.Max(of);
        return _held.Values.Select(of).OrderByDescending(l => l).ElementAt(_others - 1);
    }

    private static void Release(PriorityQueue<(T Waiter, long Since), long> waiting, long held, Action<T, long> release)
    {
        while (waiting.TryPeek(out var waiter, out var lsn) && lsn <= held)
        {
            waiting.Dequeue();
            release(waiter.Waiter, lsn);
        }
    }
}
