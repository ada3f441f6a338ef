// Placement's measure of how far each replica is behind its primary in bytes, once a round: from the round's reports
// (and the last lsn known of a replica host that is away) it asks each primary, in one message per primary host, for
// the stream bytes after each lagging replica's lsn (MeasureLags). Nothing is asked while every replica is at its
// primary's head.
using Akka.Actor;

namespace CloudFs.Actors.Replication;

internal static class LagSurvey
{
    /// <summary>What a primary is asked: the bytes of <paramref name="Volume"/> after <paramref name="AfterLsn"/>, on behalf of replica <paramref name="Host"/>.</summary>
    public sealed record Query(string Volume, string Host, long AfterLsn);

    /// <summary>The queries of one round by the primary's address: per volume, the primary as placement takes it (its
    /// writable holder of the newest view with the longest chain) and every other host of that view's replica set whose
    /// lsn (reported this round, else <paramref name="away"/>'s, else 0 for a host that holds no copy) is behind it.</summary>
    public static Dictionary<string, List<Query>> Plan(IReadOnlyList<(string Address, VolumeReports Reports)> reports,
        IReadOnlyDictionary<(string Volume, string Host), long> away)
    {
        var byVolume = new Dictionary<string, List<(string Address, string Host, VolumeReport Report)>>();
        foreach (var (address, host) in reports)
            foreach (var v in host.Volumes)
            {
                if (!byVolume.TryGetValue(v.Id, out var list)) byVolume[v.Id] = list = [];
                list.Add((address, host.HostId, v));
            }
        var plan = new Dictionary<string, List<Query>>();
        foreach (var (id, held) in byVolume)
        {
            var newest = held.OrderByDescending(h => h.Report.ViewNumber).ThenByDescending(h => h.Report.Lsn).First().Report;
            if (newest.Replicas.Length < 2 || newest.BranchedFrom is not null) continue;
            var primary = held.Where(h => h.Report.Writable && h.Report.ViewNumber == newest.ViewNumber)
                .OrderByDescending(h => h.Report.Lsn).FirstOrDefault();
            if (primary.Report is null) continue;
            foreach (var host in newest.Replicas)
            {
                if (host == primary.Host) continue;
                var lsn = held.FirstOrDefault(h => h.Host == host).Report?.Lsn ?? away.GetValueOrDefault((id, host));
                if (lsn >= primary.Report.Lsn) continue;
                if (!plan.TryGetValue(primary.Address, out var queries)) plan[primary.Address] = queries = [];
                queries.Add(new Query(id, host, lsn));
            }
        }
        return plan;
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
