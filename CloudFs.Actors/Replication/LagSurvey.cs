// Placement's measure of how far each replica is behind its primary in bytes, once a round: for the volumes of its table
// with a replica behind (Behind: from the replicas' reported lsns, and the last lsn known of a replica host that is
// away) it asks each primary, in one message per primary host, for the stream bytes after each lagging replica's lsn
// (MeasureLags). Nothing is asked while every replica is at its primary's head.
using Akka.Actor;

namespace CloudFs.Actors.Replication;

internal static class LagSurvey
{
    /// <summary>What a primary is asked: the bytes of <paramref name="Volume"/> after <paramref name="AfterLsn"/>, on behalf of replica <paramref name="Host"/>.</summary>
    public sealed record Query(string Volume, string Host, long AfterLsn);

    /// <summary>The hosts of <paramref name="replicas"/> behind the primary and the lsn each stands at (its copy's, else
    /// the last <paramref name="known"/> of a host away, else 0: it holds no copy); null when none is behind, and when the
    /// primary is not the writable holder of view <paramref name="view"/> among <paramref name="copies"/> (a replica set
    /// of one has no replica to ask about).</summary>
    public static List<(string Host, long Lsn)>? Behind(string[] replicas, string? primary, long view,
        IReadOnlyDictionary<string, VolumeReport> copies, IReadOnlyDictionary<string, long> known)
    {
        if (replicas.Length < 2 || primary is null || !copies.TryGetValue(primary, out var head) || !head.Writable || head.ViewNumber != view) return null;
        List<(string, long)>? behind = null;
        foreach (var host in replicas)
        {
            if (host == primary) continue;
            var lsn = copies.TryGetValue(host, out var copy) ? copy.Lsn : known.GetValueOrDefault(host);
            if (lsn < head.Lsn) (behind ??= []).Add((host, lsn));
        }
        return behind;
    }

    /// <summary>Asks each primary of <paramref name="plan"/> at once; the answers by (volume, replica host): the lsn
    /// measured after and the bytes. A primary that does not answer within <paramref name="timeout"/> leaves its
    /// replicas' bytes unknown.</summary>
    public static async Task<Dictionary<(string Volume, string Host), (long AfterLsn, long Bytes)>> MeasureAsync(
        Dictionary<string, List<Query>> plan, Func<string, ActorSelection> agent, TimeSpan timeout)
    {
        var answers = await Task.WhenAll(plan.Select(async p =>
        {
            try
            {
                var reply = await agent(p.Key).Ask<LagsMeasured>(new MeasureLags(p.Value.Select(q => q.Volume).ToArray(),
                    p.Value.Select(q => q.AfterLsn).ToArray()), timeout).ConfigureAwait(false);
                return (p.Value, reply.Bytes);
            }
            catch (Exception)
            {
                return (p.Value, Bytes: Array.Empty<long>());
            }
        })).ConfigureAwait(false);
        var lags = new Dictionary<(string, string), (long, long)>();
        foreach (var (queries, bytes) in answers)
            for (var i = 0; i < queries.Count && i < bytes.Length; i++)
                if (bytes[i] >= 0) lags[(queries[i].Volume, queries[i].Host)] = (queries[i].AfterLsn, bytes[i]);
        return lags;
    }
}
