// Which host's actor of a volume a request goes to (its envelope's host, VolumeEnvelope): this host when its log holds
// the volume writable; else the primary placement names (one WhereIsPrimary, O(1)), kept until it proves wrong (the
// actor there answers "not the primary", or an attempt went unanswered: the sender forgets the route and asks again).
// A volume with no primary coming (imported, a single replica whose host is away) goes to this host's actor, which
// answers from the copy here or says why not.
using System.Collections.Concurrent;
using Akka.Actor;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Gateway;

/// <param name="placement">The placement singleton's proxy (null: every volume is this host's).</param>
/// <param name="askTimeout">How long one question to placement may take.</param>
public sealed class VolumeRoutes(LogStore store, IActorRef? placement, TimeSpan askTimeout)
{
    /// <summary>The most routes kept; past it they are all forgotten (each is asked again once).</summary>
    public const int Capacity = 100_000;

    private readonly ConcurrentDictionary<Id160, Id160> _primaries = new();

    public Id160 Self => store.HostId;

    public int Count => _primaries.Count;

    /// <summary>The host to send a request for <paramref name="volume"/> to; null while a failover is choosing its
    /// primary (or placement did not answer): ask again a moment later.</summary>
    public async ValueTask<Id160?> PrimaryAsync(Id160 volume, CancellationToken ct = default)
    {
        if (placement is null || store.IsWritable(volume)) return store.HostId;
        if (_primaries.TryGetValue(volume, out var known)) return known;
        PrimaryIs answer;
        try { answer = await placement.Ask<PrimaryIs>(new WhereIsPrimary(volume.ToString()), askTimeout, ct).ConfigureAwait(false); }
        catch (AskTimeoutException) { return null; }
        if (!answer.Known) return store.HostId;
        if (answer.HostId is null || !Id160.TryParse(answer.HostId, out var primary)) return null;
        if (_primaries.Count >= Capacity) _primaries.Clear();
        _primaries[volume] = primary;
        return primary;
    }

    /// <summary>The route to <paramref name="host"/> proved wrong (or unanswered): the next request asks placement.</summary>
    public void Forget(Id160 volume, Id160 host) =>
        _primaries.TryRemove(new KeyValuePair<Id160, Id160>(volume, host));
}
