// The health of a volume in `cloudfs ls`, `status` and /metrics (SPEC.md: healthy, degraded (k of n current),
// resyncing (percent), outdated, damaged) and each replica's state and lag behind the primary, decided in one place
// from what its replica hosts report (their VolumeReports and their followers' ReplicaSync), so every reason a volume
// can be unwell is weighed against the others here.
using CloudFs.Actors.Replication;

namespace CloudFs.Actors.Management;

public static class VolumeHealth
{
    public const string Healthy = "healthy";
    public const string Degraded = "degraded";
    public const string Resyncing = "resyncing";
    public const string Outdated = "outdated";
    public const string Damaged = "damaged";

    /// <summary>Every word, in the order of precedence (the first that applies is the volume's).</summary>
    public static readonly string[] Words = [Damaged, Degraded, Outdated, Resyncing, Healthy];

    /// <summary>One host of the replica set as placement sees it. <paramref name="Live"/>: Up, reachable, its device
    /// works. <paramref name="Report"/>: its copy as it reported it this round (null: it did not, or holds none).
    /// <paramref name="KnownLsn"/>: its head as last reported (also from an earlier round, while it is away).
    /// <paramref name="Sync"/>: its follower's state (null: no follower runs there). <paramref name="LagBytes"/>: the
    /// stream bytes the primary measured after KnownLsn (null: not measured).</summary>
    public sealed record ReplicaInput(string Host, bool Live, VolumeReport? Report, long? KnownLsn, ReplicaSync? Sync, long? LagBytes);

    /// <summary>A volume's health: <paramref name="Word"/>, <paramref name="Current"/> of <paramref name="Total"/>
    /// replicas current (the primary counts), the least progress of a resync under way (null when none), each replica.</summary>
    public sealed record Verdict(string Word, int Current, int Total, int? ResyncPercent, ReplicaLag[] Replicas);

    /// <summary>
    /// The replicas' states, then the volume's word. A replica is <c>primary</c>; <c>current</c> when at the primary's
    /// view and head (or following it, caught up); <c>resyncing</c> while its follower fetches the volume or the
    /// entries it missed; <c>outdated</c> when it holds an older view or is behind and not following; <c>away</c> when
    /// its host is not live. The volume is damaged when a live replica reports ranges it cannot serve; degraded when a
    /// replica is away or there is no primary; outdated when one is; resyncing when one is; healthy otherwise.
    /// </summary>
    public static Verdict Decide(long sizeBytes, string? primary, IReadOnlyList<ReplicaInput> replicas)
    {
        var head = replicas.FirstOrDefault(r => r.Host == primary)?.Report;
        var states = new ReplicaLag[replicas.Count];
        int? percent = null;
        for (var i = 0; i < replicas.Count; i++)
        {
            var r = replicas[i];
            var lsn = r.Report?.Lsn ?? r.KnownLsn;
            var lagEntries = head is null || lsn is null ? (long?)null : Math.Max(0, head.Lsn - lsn.Value);
            var lagBytes = lagEntries == 0 ? 0 : r.LagBytes;
            string state;
            if (r.Host == primary && r.Live && head is not null) { state = ReplicaLag.Primary; lagEntries = 0; lagBytes = 0; }
            else if (!r.Live) state = ReplicaLag.Away;
            // A follower that is (re)connecting or catching up while its copy already holds the primary's view and head
            // has nothing left to fetch: it is current (it showed as "resyncing (0%)" with no lag).
            else if (r.Sync is { State: ReplicaSync.Resyncing or ReplicaSync.CatchingUp or ReplicaSync.Connecting } sync
                     && (sync.State == ReplicaSync.Resyncing || !HoldsHead(r.Report, head)))
            {
                state = ReplicaLag.Resyncing;
                var p = Percent(sync, sizeBytes);
                percent = percent is null ? p : Math.Min(percent.Value, p);
            }
            else if (head is not null && r.Report is { } copy && copy.ViewNumber >= head.ViewNumber
                     && (copy.Lsn >= head.Lsn || r.Sync?.State == ReplicaSync.Following))
                state = ReplicaLag.Current;
            else state = ReplicaLag.Outdated;
            states[i] = new ReplicaLag(r.Host, state, lagEntries, lagBytes);
        }
        var current = states.Count(s => s.State is ReplicaLag.Primary or ReplicaLag.Current);
        string word;
        if (replicas.Any(r => r.Live && r.Report is { DamagedBytes: > 0 })) word = Damaged;
        else if (head is null || states.Any(s => s.State == ReplicaLag.Away)) word = Degraded;
        else if (states.Any(s => s.State == ReplicaLag.Outdated)) word = Outdated;
        else if (states.Any(s => s.State == ReplicaLag.Resyncing)) word = Resyncing;
        else word = Healthy;
        return new Verdict(word, current, replicas.Count, word == Resyncing ? percent ?? 0 : null, states);
    }

    /// <summary>Whether <paramref name="copy"/> is the primary's head (<paramref name="head"/>): its view, lsn and version.</summary>
    private static bool HoldsHead(VolumeReport? copy, VolumeReport? head) =>
        head is not null && copy is not null && copy.ViewNumber == head.ViewNumber && copy.Lsn == head.Lsn && copy.Version == head.Version;

    /// <summary>How far a follower's sync got, 0..100 (a full resync: the bytes of the volume covered; a catch-up:
    /// the entries applied of those missing when its feed started; connecting: 0). Never 100 before it is done.</summary>
    public static int Percent(ReplicaSync sync, long sizeBytes)
    {
        var (done, total) = sync.State switch
        {
            ReplicaSync.Resyncing => (sync.Done, sizeBytes),
            ReplicaSync.CatchingUp => (sync.Done, sync.Total),
            _ => (0L, 1L),
        };
        if (total <= 0) return 0;
        return (int)Math.Clamp(done * 100 / total, 0, 99);
    }

    /// <summary>One host's word about its own copy (no other host consulted): damaged when it cannot serve a range of it.</summary>
    public static string OfLocal(VolumeReport report) => report.DamagedBytes > 0 ? Damaged : Healthy;

    /// <summary>The word with its detail, as `status` and the status page print it: "degraded (2 of 3 current)",
    /// "resyncing (45%)", "outdated (2 of 3 current)", else the word.</summary>
    public static string Describe(VolumeSummary v) => v.Health switch
    {
        Degraded or Outdated when v.Lag is { Count: > 0 } => $"{v.Health} ({v.CurrentReplicas} of {v.Lag.Count} current)",
        Resyncing => $"{v.Health} ({v.ResyncPercent ?? 0}%)",
        _ => v.Health,
    };
}
