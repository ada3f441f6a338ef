// A host's integrity agent (/user/cloudfs-integrity): runs the background scrub (rate-limited, cloudfs.scrub) and the
// scrubs `cloudfs scrub` asks for (one at a time: an asked-for scrub stops a background pass), repairs what they find
// from the volumes' other replicas, serves this host's copy of a range (or of whole entries another replica lost) to
// another replica's repair, and answers
// `cloudfs verify` (heads, digests).
using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Integrity;

public sealed class IntegrityAgent : ReceiveActor, IWithTimers
{
    public const string Name = "cloudfs-integrity";
    public const string Path = "/user/" + Name;

    /// <summary>Ranges one scrub answer lists at most (a disk gone bad in many places would not fit one message).</summary>
    public const int MaxRangesListed = 10_000;

    private sealed record BackgroundTick
    {
        public static readonly BackgroundTick Instance = new();
    }

    private sealed record BackgroundEnded(TimeSpan Took);

    private readonly LogStore _store;
    private readonly ScrubSettings _settings;
    private readonly ReplicaRepair _repair;
    private readonly ReplicationCounters _counters;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    // One scrub at a time reads this device; a background pass gives way to an asked-for one.
    private readonly SemaphoreSlim _scrubGate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private CancellationTokenSource? _background;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(LogStore store, ScrubSettings settings, ReplicationCounters counters) =>
        Akka.Actor.Props.Create(() => new IntegrityAgent(store, settings, counters));

    public IntegrityAgent(LogStore store, ScrubSettings settings, ReplicationCounters counters)
    {
        _store = store;
        _settings = settings;
        _counters = counters;
        _repair = new ReplicaRepair(store, Context.System, counters, settings.AskTimeout, _log);

        Receive<ReadForRepair>(r => Reply(Sender, ServeCopyAsync(r)));
        Receive<ReadLostEntries>(r => Reply(Sender, ServeLostEntriesAsync(r)));
        Receive<RepairRange>(r => Reply(Sender, RepairAsync(r)));
        Receive<ScrubHost>(s =>
        {
            _background?.Cancel();
            Reply(Sender, ScrubAsync(s));
        });
        Receive<DescribeReplica>(d => Sender.Tell(Describe(d)));
        Receive<DigestVolume>(d => Reply(Sender, DigestAsync(d)));
        Receive<BackgroundTick>(_ => StartBackground());
        Receive<BackgroundEnded>(e =>
        {
            // Cancelled and disposed on this thread only, so a scrub asked for meanwhile never cancels a disposed source.
            _background?.Dispose();
            _background = null;
            // Passes start Interval apart; one that ran longer is followed at once.
            var next = _settings.Interval - e.Took;
            Timers.StartSingleTimer("scrub", BackgroundTick.Instance, next > TimeSpan.Zero ? next : TimeSpan.Zero);
        });
    }

    protected override void PreStart()
    {
        if (_settings.Background) Timers.StartSingleTimer("scrub", BackgroundTick.Instance, _settings.FirstDelay);
    }

    protected override void PostStop()
    {
        _stopping.Cancel();
        _background?.Cancel();
    }

    private void StartBackground()
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        _background = cts;
        var self = Self;
        var clock = Stopwatch.StartNew();
        _ = Run();

        async Task Run()
        {
            try
            {
                if (!await _scrubGate.WaitAsync(0).ConfigureAwait(false)) return;   // an asked-for scrub runs: it covers this pass
                try
                {
                    var result = await _store.Scrubber.ScrubAsync(new ScrubOptions(BytesPerSecond: _settings.BytesPerSecond), cts.Token).ConfigureAwait(false);
                    var repaired = RepairReport.None;
                    foreach (var v in _store.ListVolumes())
                        if (v.IsDamaged && v.Replicas.Count > 1) repaired = repaired.Add(await _repair.RepairDamageAsync(v.BaseId, cts.Token).ConfigureAwait(false));
                    var damaged = _store.ListVolumes().Count(v => v.IsDamaged);
                    if (result.BadBlocks > 0 || repaired.Repaired > 0 || damaged > 0)
                        _log.Warning("background scrub: {0} bytes verified in {1:0} s, {2} bad block(s), {3} restored from replicas; {4} volume(s) still damaged here",
                            result.BytesVerified, result.Elapsed.TotalSeconds, result.BadBlocks, repaired.Repaired, damaged);
                    else
                        _log.Info("background scrub: {0} bytes verified in {1:0} s, nothing bad", result.BytesVerified, result.Elapsed.TotalSeconds);
                }
                finally { _scrubGate.Release(); }
            }
            catch (OperationCanceledException) { _log.Info("background scrub stopped (an asked-for scrub or the node's stop)"); }
            catch (ObjectDisposedException) { }
            catch (Exception e) { _log.Error(e, "background scrub failed; the next pass tries again"); }
            finally { self.Tell(new BackgroundEnded(clock.Elapsed)); }
        }
    }

    private async Task<object> ScrubAsync(ScrubHost s)
    {
        Id160? only = null;
        if (s.Volume is not null)
        {
            if (!Id160.TryParse(s.Volume, out var v)) return new ControlFailed($"'{s.Volume}' is not a volume id");
            if (_store.GetVolume(v) is null) return new ControlFailed($"volume {v} is not held by host {_store.HostId}");
            only = v;
        }
        await _scrubGate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        try
        {
            var result = await _store.Scrubber.ScrubAsync(new ScrubOptions(only), _stopping.Token).ConfigureAwait(false);
            var ranges = new List<HostScrubRange>();
            foreach (var v in _store.ListVolumes())
            {
                if (only is { } o && v.BaseId != o) continue;
                var before = v.Damage;
                var problem = (string?)null;
                if (before.Count > 0 && v.Replicas.Count > 1)
                    problem = (await _repair.RepairDamageAsync(v.BaseId, _stopping.Token).ConfigureAwait(false)).Problem;
                var after = _store.GetVolume(v.BaseId)?.Damage ?? [];
                foreach (var (offset, length, reason) in Subtract(before, after))
                    ranges.Add(new HostScrubRange(v.BaseId.ToString(), offset, length, true, reason));
                foreach (var d in after)
                    ranges.Add(new HostScrubRange(v.BaseId.ToString(), d.Offset, d.Length, false,
                        v.Replicas.Count > 1 ? d.Reason + (problem is null ? "" : $"; not repaired: {problem}") : d.Reason + "; the volume has no other replica"));
            }
            ranges.Sort((a, b) => (a.Volume, a.Offset).CompareTo((b.Volume, b.Offset)));
            var leftOut = Math.Max(0, ranges.Count - MaxRangesListed);
            if (leftOut > 0) ranges.RemoveRange(MaxRangesListed, leftOut);
            _log.Info("scrub asked for: {0} bytes verified in {1:0.0} s, {2} bad block(s), {3} range(s) repaired, {4} still damaged",
                result.BytesVerified, result.Elapsed.TotalSeconds, result.BadBlocks, ranges.Count(r => r.Repaired), ranges.Count(r => !r.Repaired));
            return new HostScrubbed(_store.HostId.ToString(), result.BytesVerified, result.BytesRead, result.BadBlocks, result.Elapsed.TotalSeconds, ranges.ToArray(), leftOut);
        }
        finally { _scrubGate.Release(); }
    }

    /// <summary>The parts of the ranges before that are no longer damaged after, with the reason they had.</summary>
    internal static IEnumerable<(long Offset, long Length, string Reason)> Subtract(IReadOnlyList<DamagedRange> before, IReadOnlyList<DamagedRange> after)
    {
        foreach (var b in before)
        {
            var pos = b.Offset;
            foreach (var a in after.Where(a => a.End > b.Offset && a.Offset < b.End).OrderBy(a => a.Offset))
            {
                if (a.Offset > pos) yield return (pos, a.Offset - pos, b.Reason);
                pos = Math.Max(pos, a.End);
            }
            if (pos < b.End) yield return (pos, b.End - pos, b.Reason);
        }
    }

    private async Task<object> RepairAsync(RepairRange r)
    {
        var report = await _repair.RepairRangeAsync(r.Volume, r.Offset, r.Length, _stopping.Token).ConfigureAwait(false);
        var still = _store.GetVolume(r.Volume) is { } info && info.Damage.Any(d => d.End > r.Offset && d.Offset < r.Offset + r.Length);
        if (r.ForRead && (report.Repaired > 0 || report.Restored > 0) && !still) _counters.ReadRepaired();
        return new RangeRepaired(report.Repaired, still);
    }

    private async Task<object> ServeCopyAsync(ReadForRepair r)
    {
        var copy = await _store.Repair.ReadForRepairAsync(r.Volume, r.Offset, r.Length, r.AskerLsn, r.AskerVersion, _stopping.Token).ConfigureAwait(false);
        return ReplicaCopy.From(copy);
    }

    private async Task<object> ServeLostEntriesAsync(ReadLostEntries r) =>
        new LostEntriesCopy(await _store.Restoration.ReadLostEntriesAsync(r.Volume, r.FirstLsn, r.LastLsn, _stopping.Token).ConfigureAwait(false));

    private ReplicaState Describe(DescribeReplica d)
    {
        var host = _store.HostId.ToString();
        if (!Id160.TryParse(d.Volume, out var v) || _store.GetVolume(v) is not { } info) return new ReplicaState(host, false, 0, "", 0);
        return new ReplicaState(host, true, info.Lsn, info.CurrentVersion.ToString(), info.Damage.Sum(x => x.Length));
    }

    private async Task<object> DigestAsync(DigestVolume d)
    {
        if (!Id160.TryParse(d.Volume, out var v) || _store.GetVolume(v) is null) return new ControlFailed($"volume {d.Volume} is not held by host {_store.HostId}");
        await _store.Streams.WaitForHeadAsync(v, d.Lsn, TimeSpan.FromMilliseconds(Math.Max(0, d.WaitMs)), _stopping.Token).ConfigureAwait(false);
        // A write or an applied entry during the digest would mix two versions: try again a few times.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var digest = await _store.Scrubber.DigestAsync(v, d.RangeBytes, _stopping.Token).ConfigureAwait(false);
                var unreadable = new byte[digest.Count];
                foreach (var r in digest.Unreadable) unreadable[r] = 1;
                return new VolumeDigested(_store.HostId.ToString(), digest.Lsn, digest.Version.ToString(), digest.RangeBytes, digest.Digests, unreadable);
            }
            catch (VolumeMovedException) when (attempt < 3) { }
        }
    }

    // Slow answers run beside the actor; an exception becomes a ControlFailed with one sentence.
    private static void Reply(IActorRef replyTo, Task<object> work)
    {
        work.ContinueWith(t => t.IsCompletedSuccessfully
                ? t.Result
                : new ControlFailed(t.Exception?.GetBaseException().Message ?? "cancelled"),
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(replyTo);
    }
}
