// Who holds what of a sync volume: the written and durable heads each other host of the replica set reported on its
// current feed connection, and the requests waiting for a majority to hold an lsn (writes: in its log; FUA writes and
// flushes: durably). A host counts only while its feed is connected, and only for what that feed reported.
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

internal sealed class SyncQuorum<T>(int replicaCount)
{
    private readonly Dictionary<Id160, (long Feed, long Written, long Durable)> _held = new();
    // The newest feed of each host known to have ended: a report of it that arrives after its end is not counted.
    private readonly Dictionary<Id160, long> _ended = new();
    private readonly PriorityQueue<T, long> _awaitingWritten = new();
    private readonly PriorityQueue<T, long> _awaitingDurable = new();
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

    /// <summary><paramref name="waiter"/> is released once a majority holds <paramref name="lsn"/> (durably when asked).</summary>
    public void Wait(T waiter, long lsn, bool durable) => (durable ? _awaitingDurable : _awaitingWritten).Enqueue(waiter, lsn);

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
        while (_awaitingWritten.TryDequeue(out var w, out _)) abandon(w);
        while (_awaitingDurable.TryDequeue(out var d, out _)) abandon(d);
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

    private static void Release(PriorityQueue<T, long> waiting, long held, Action<T, long> release)
    {
        while (waiting.TryPeek(out var waiter, out var lsn) && lsn <= held)
        {
            waiting.Dequeue();
            release(waiter, lsn);
        }
    }
}
