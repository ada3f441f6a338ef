// The placement singleton: knows every host (id, address) and every volume's replica set and primary, rebuilt
// from the hosts' own logs each round (nothing of its own to lose when it moves). It creates volumes (prepare on
// each chosen host, then commit on the primary, then the replicas follow), keeps every replica following its
// primary, and fails a volume over when its primary's host is lost: fence a majority, pick the most up-to-date,
// collect shares, take over. A host whose log device failed counts as lost for everything but its vote: it is primary
// of nothing and chosen for nothing, yet it still fences and releases its share (they are in its key file).
// Only members that proved their identity to this node (its ProvenHosts) are hosts it chooses: for a new volume, a
// replacement, a failover, or to follow a primary; a member that failed its proof is never one.
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Identity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public sealed class PlacementActor : ReceiveActor, IWithTimers
{
    public const string Name = "cloudfs-placement";

    /// <summary>One volume as the hosts' reports describe it.</summary>
    private sealed record VolumeRecord(string Id, long Size, VolumeMode Mode, string[] Replicas, string? Primary, long Lsn,
        string Version, long View, string? BranchedFrom, IReadOnlyDictionary<string, VolumeReport> Reports)
    {
        /// <summary>The name given at creation (null for none).</summary>
        public string? Name { get; init; }
        /// <summary>When the volume went to the trash (Unix ms), 0 while it is not in the trash.</summary>
        public long TrashedAtUnixMs { get; init; }
        /// <summary>The head each replica host last reported, kept while a host is away (its lag grows as the primary writes).</summary>
        public IReadOnlyDictionary<string, long> KnownLsns { get; init; } = new Dictionary<string, long>();
    }

    /// <summary>Where a host's reports stand: the next round asks it for what changed after <paramref name="Stamp"/> of
    /// its agent's <paramref name="Epoch"/>.</summary>
    private sealed record ReportCursor(string HostId, long Epoch, long Stamp);

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    /// <param name="Sweep">Every host was asked for a full report, and every volume is reconciled.</param>
    private sealed record Gathered(IReadOnlyList<(string Address, HostDescription Host)> Hosts, IReadOnlyList<(string Address, VolumeReports Reports)> Reports, DateTime Started,
        bool Sweep);
    private sealed record Surveyed(Dictionary<(string Volume, string Host), (long AfterLsn, long Bytes)> Lags);
    private sealed record Created(VolumeReport Volume, string Primary);
    private sealed record PlaceAfterRound(PlaceVolume Request, IActorRef ReplyTo, DateTime Since);
    private sealed record FailoverEnded(string Volume, string? NewPrimary, string? Error);
    private sealed record ReplacementEnded(string Volume, string? Error);
    private sealed record CreateAbandoned(string? Name);
    private sealed record PurgeEnded(string Volume, IActorRef ReplyTo, PurgeDone Result);

    private readonly PlacementSettings _settings;
    private readonly ProvenHosts _proven;
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ActorSystem _system = Context.System;
    private readonly Dictionary<string, HostDescription> _hosts = new();
    // The table: every volume as the hosts' reports describe it, kept across rounds and changed by what they report.
    private readonly Dictionary<string, VolumeRecord> _volumes = new();
    // Each answering host's place in its reports, by member address; a host not here is asked for a full report.
    private readonly Dictionary<string, ReportCursor> _cursors = new();
    // The volumes each host reported a copy of (by host id), and where each host's follower of a volume stands.
    private readonly Dictionary<string, HashSet<string>> _heldBy = new();
    private readonly Dictionary<string, Dictionary<string, ReplicaSync>> _syncs = new();
    private readonly Dictionary<string, HashSet<string>> _syncsOf = new();
    // Volumes reconciled every round until they settle: no live primary yet (a failover), a replica host away or
    // told to follow. Other volumes are reconciled when a report changes them, and all of them in a sweep.
    private readonly HashSet<string> _attention = new();
    // Volumes with a replica behind the primary: the lag survey asks their primaries only.
    private readonly HashSet<string> _lagging = new();
    // When the next round asks every host for everything (cloudfs.placement.sweep); the first round does.
    private DateTime _nextSweep = DateTime.MinValue;
    private readonly HashSet<string> _failovers = new();
    private readonly HashSet<Akka.Cluster.UniqueAddress> _lost = new();
    // Replica hosts seen absent (not Up and reachable), since when; and volumes whose replica set is being changed.
    private readonly Dictionary<string, DateTime> _absentSince = new();
    private readonly HashSet<string> _replacing = new();
    // A failover that failed is tried again no sooner than this (the next round, not in a tight loop).
    private readonly Dictionary<string, DateTime> _failoverAfter = new();
    private readonly List<(ListVolumePage Request, IActorRef ReplyTo)> _listers = new();
    // The volume ids in order, for pages; null after the set of volumes changed (rebuilt by the next page).
    private string[]? _order;
    // Volume names to ids (names are unique): rebuilt on first use after a round, kept up to date by creates and purges.
    private Dictionary<string, string>? _names;
    // Hosts whose log device failed, by host id (their own word): until the host describes itself healthy again, which
    // only a new incarnation on a good device does.
    private readonly Dictionary<string, (string Address, string Reason, DateTime Since)> _deviceFailed = new();
    private readonly List<(PlaceVolume Request, IActorRef ReplyTo, int Rounds, DateTime Since)> _creates = new();
    private bool _gathering;
    // The stream bytes each lagging replica misses, as its primary measured them in the last round (LagSurvey).
    private Dictionary<(string Volume, string Host), (long AfterLsn, long Bytes)> _lagBytes = new();
    private readonly TimeSpan _trashKeep;
    // Volumes being purged (left alone by reconciliation meanwhile), and those purged while this singleton runs: a host
    // that was away during the purge and reports its copy again is told to purge it too.
    private readonly HashSet<string> _purging = new();
    private readonly HashSet<string> _purged = new();
    // Names of volumes being created: a name is unique in the cluster, also against a create under way.
    private readonly HashSet<string> _namesInCreation = new(StringComparer.Ordinal);

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="proven">The directory of verified members of the node this singleton runs on.</param>
    /// <param name="trashKeep">cloudfs.trash.keep: a volume in the trash longer than this is left to its hosts' purge
    /// (no replica follows it and no failover starts for it any more).</param>
    public static Props Props(PlacementSettings settings, ProvenHosts proven, TimeSpan trashKeep) =>
        Akka.Actor.Props.Create(() => new PlacementActor(settings, proven, trashKeep));

    public PlacementActor(PlacementSettings settings, ProvenHosts proven, TimeSpan trashKeep)
    {
        _settings = settings;
        _proven = proven;
        _trashKeep = trashKeep;
        Receive<Tick>(_ => Gather());
        // Cluster.State lags behind the events a subscriber receives: what was lost is tracked from the events too.
        Receive<Akka.Cluster.ClusterEvent.UnreachableMember>(u =>
        {
            _lost.Add(u.Member.UniqueAddress);
            OnMemberLost(u.Member.Address);
        });
        Receive<Akka.Cluster.ClusterEvent.ReachableMember>(r => _lost.Remove(r.Member.UniqueAddress));
        // Downed (e.g. by the crash detector): fail over now, while the leader waits for the failure detector to see it
        // unreachable before it can remove it.
        Receive<Akka.Cluster.ClusterEvent.MemberDowned>(m =>
        {
            _lost.Add(m.Member.UniqueAddress);
            OnMemberLost(m.Member.Address);
        });
        Receive<Akka.Cluster.ClusterEvent.MemberRemoved>(m =>
        {
            _lost.Add(m.Member.UniqueAddress);
            OnMemberLost(m.Member.Address);
        });
        Receive<Akka.Cluster.ClusterEvent.IMemberEvent>(_ => { });
        // A host's answer to FollowVolume: it follows (nothing to do), or it did not take the command from here.
        Receive<Following>(_ => { });
        Receive<ControlFailed>(f => _log.Warning("a host refused placement's command: {0}", f.Reason));
        Receive<Gathered>(OnGathered);
        Receive<Surveyed>(OnSurveyed);
        Receive<HostDeviceFailed>(f => OnDeviceFailed(f.HostId, f.Address, f.Reason));
        Receive<PlaceVolume>(p =>
        {
            // Enough choosable hosts known (described in a round, proven, Up and reachable now): placed at once, without
            // a round that asks every host for every volume, so a create costs the same at 100,000 volumes as at 10.
            // Each chosen host still votes on the volume before anything is created.
            if (LiveHosts().Count(h => h.FreeBytes > 0) >= p.Replicas)
            {
                Create(p, Sender, DateTime.UtcNow);
                return;
            }
            // Otherwise decided on a fresh round: a host that joined a moment ago is counted, and a dead one is not.
            _creates.Add((p, Sender, 0, DateTime.UtcNow));
            Gather();
        });
        // A chosen host did not answer its vote: decided again on a fresh round (which gives a busy or just-joined host
        // two more rounds, and leaves out one that is gone), as a create without known hosts is.
        Receive<PlaceAfterRound>(r =>
        {
            _creates.Add((r.Request, r.ReplyTo, 0, r.Since));
            Gather();
        });
        Receive<Created>(c =>
        {
            var v = c.Volume;
            if (v.Name is not null) _namesInCreation.Remove(v.Name);
            if (_volumes.ContainsKey(v.Id)) return;
            if (!_heldBy.TryGetValue(c.Primary, out var held)) _heldBy[c.Primary] = held = new HashSet<string>();
            held.Add(v.Id);
            Keep(new VolumeRecord(v.Id, v.Size, v.Mode, v.Replicas, c.Primary, v.Lsn, v.Version, v.ViewNumber, v.BranchedFrom,
                new Dictionary<string, VolumeReport> { [c.Primary] = v }) { Name = v.Name });
        });
        Receive<WhereIsPrimary>(w => Sender.Tell(PrimaryOf(w.Volume)));
        Receive<ListVolumePage>(p =>
        {
            // A listing's first page is answered after a fresh round, so `cloudfs ls` right after a write shows its
            // version; the pages after it come from the same table at once.
            if (p.After is not null) { Sender.Tell(Page(p)); return; }
            _listers.Add((p, Sender));
            Gather();
        });
        Receive<LocateVolume>(l => Sender.Tell(Locate(l.VolumeId)));
        Receive<ReplacementEnded>(r =>
        {
            _replacing.Remove(r.Volume);
            if (r.Error is not null) _log.Warning("replacing a lost replica of volume {0} failed: {1}", r.Volume, r.Error);
            Gather();
        });
        Receive<CreateAbandoned>(c => { if (c.Name is not null) _namesInCreation.Remove(c.Name); });
        Receive<PurgeVolume>(p => Purge(p.Volume, Sender));
        Receive<PurgeEnded>(p =>
        {
            _purging.Remove(p.Volume);
            if (p.Result.Error is null)
            {
                _purged.Add(p.Volume);
                if (_volumes.TryGetValue(p.Volume, out var gone)) Forget(gone);
            }
            p.ReplyTo.Tell(p.Result);
        });
        Receive<FailoverEnded>(f =>
        {
            _failovers.Remove(f.Volume);
            if (f.Error is not null)
            {
                _failoverAfter[f.Volume] = DateTime.UtcNow + _settings.Tick;
                _log.Warning("failover of volume {0} failed: {1}", f.Volume, f.Error);
            }
            else _log.Warning("volume {0} failed over to host {1}", f.Volume, f.NewPrimary);
            if (f.NewPrimary is not null && _volumes.TryGetValue(f.Volume, out var r)) _volumes[f.Volume] = r with { Primary = f.NewPrimary };
            // Looked at in the next round whatever its hosts report: followed, or tried again.
            _attention.Add(f.Volume);
            Gather();
        });
    }

    protected override void PreStart()
    {
        // The operator's answer to "where does placement run" (the framework's own line is below the node's log level).
        _log.Info("placement service started on this member ({0})", _cluster.SelfAddress);
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.Zero, _settings.Tick);
        // A primary that becomes unreachable starts its volumes' failover at once, not at the next round.
        _cluster.Subscribe(Self, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(Akka.Cluster.ClusterEvent.UnreachableMember), typeof(Akka.Cluster.ClusterEvent.ReachableMember),
            typeof(Akka.Cluster.ClusterEvent.MemberRemoved), typeof(Akka.Cluster.ClusterEvent.MemberDowned));
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void OnMemberLost(Address member)
    {
        var address = member.ToString();
        foreach (var r in _volumes.Values)
            if (r.Primary is not null && _hosts.TryGetValue(r.Primary, out var h) && h.Address == address) Reconcile(r);
    }

    private bool DeviceFailed(string? host) => host is not null && _deviceFailed.ContainsKey(host);

    private void OnDeviceFailed(string host, string address, string reason)
    {
        if (!_deviceFailed.TryAdd(host, (address, reason, DateTime.UtcNow))) return;
        _log.Warning("host {0} ({1}): its log device failed ({2}); its volumes fail over to healthy replicas and it is chosen for nothing until it is restarted on a good device",
            host, address, reason);
        foreach (var r in _volumes.Values)
            if (r.Primary == host) Reconcile(r);
    }

    private PrimaryIs PrimaryOf(string volume)
    {
        if (!_volumes.TryGetValue(volume, out var r)) return new PrimaryIs(volume, false, null, null);
        var address = LiveAddressOf(r.Primary);
        if (address is not null) return new PrimaryIs(volume, true, r.Primary, address);
        // No live primary: one is coming only from a failover under way or one that can start here. Otherwise (a
        // single-replica volume whose host is away or was never a member, an imported copy, a branch, a minority)
        // the asker need not wait for one.
        return new PrimaryIs(volume, _failovers.Contains(r.Id) || CanFailOver(r), null, null);
    }

    /// <summary>Whether a failover of <paramref name="r"/> could start: a replicated volume (a branch too) with a
    /// majority of its set among the live candidates and witnesses.</summary>
    private bool CanFailOver(VolumeRecord r) =>
        r.Replicas.Length >= 2 && FailoverCandidates(r).Length + Witnesses(r).Length >= Placement.Majority(r.Replicas.Length);

    /// <summary>The hosts of the set other than the lost primary that can be chosen, with their addresses.</summary>
    private (string Host, string Address)[] FailoverCandidates(VolumeRecord r) => r.Replicas.Where(h => h != r.Primary)
        .Select(h => (Host: h, Address: ChoosableAddressOf(h)))
        .Where(c => c.Address is not null)
        .Select(c => (c.Host, Address: c.Address!))
        .ToArray();

    /// <summary>Hosts of the set whose log device failed but that still run (the failed primary above all): never
    /// chosen, but they fence (their log takes nothing more anyway) and release their share, which is in their key
    /// file, not on the failed device.</summary>
    private string[] Witnesses(VolumeRecord r) => r.Replicas.Where(DeviceFailed).Select(ProvenLiveAddressOf).OfType<string>().ToArray();

    /// <summary>Members that are Up and reachable and did not fail their identity proof, by address.</summary>
    private HashSet<string> LiveAddresses()
    {
        var state = _cluster.State;
        return state.Members.Where(m => m.Status == Akka.Cluster.MemberStatus.Up && !state.Unreachable.Contains(m) && !_lost.Contains(m.UniqueAddress))
            .Select(m => m.Address.ToString()).Where(a => !_proven.IsRefused(a)).ToHashSet();
    }

    /// <summary>Where a host is: at the member that proved to be it; else, while a proof is under way, where it
    /// describes itself. Null when neither (or the member there failed its proof).</summary>
    private string? AddressOf(string host)
    {
        if (Id160.TryParse(host, out var id) && _proven.OfHost(id) is { } proven) return proven.Address;
        return _hosts.TryGetValue(host, out var d) && !_proven.IsRefused(d.Address) ? d.Address : null;
    }

    /// <summary>The address of a host that is Up, reachable and whose device works; null otherwise. A host whose proof is
    /// still under way counts here (its primaries are not failed over for it), but it is chosen for nothing.</summary>
    private string? LiveAddressOf(string? host) =>
        host is not null && !DeviceFailed(host) && AddressOf(host) is { } address && LiveAddresses().Contains(address) ? address : null;

    /// <summary>The address of a host that proved its identity to this node and is Up and reachable; null otherwise.</summary>
    private string? ProvenLiveAddressOf(string? host) =>
        host is not null && Id160.TryParse(host, out var id) && _proven.OfHost(id) is { } proven && LiveAddresses().Contains(proven.Address) ? proven.Address : null;

    /// <summary>As <see cref="ProvenLiveAddressOf"/>, of a host whose device works: a host placement may choose.</summary>
    private string? ChoosableAddressOf(string? host) => DeviceFailed(host) ? null : ProvenLiveAddressOf(host);

    /// <summary>The hosts placement may choose for a volume: proven, Up, reachable, with a working device.</summary>
    private IReadOnlyList<HostDescription> LiveHosts() =>
        _hosts.Values.Where(h => ChoosableAddressOf(h.HostId) == h.Address).ToArray();

    private ActorSelection Agent(string address) => _system.ActorSelection(address + HostAgent.Path);

    // ---- gathering: every live host describes itself and reports what changed in its log since it last did ----

    private void Gather()
    {
        if (_gathering) return;
        _gathering = true;
        var addresses = LiveAddresses().ToArray();
        var timeout = _settings.AskTimeout;
        var self = Self;
        var started = DateTime.UtcNow;
        // The safety net: now and then every host reports everything and every volume is reconciled (a change a host
        // did not stamp, a command lost on the way).
        var sweep = started >= _nextSweep;
        if (sweep) _nextSweep = started + _settings.Sweep;
        var asks = addresses.Select(a => (Address: a, Ask: !sweep && _cursors.TryGetValue(a, out var c) ? new ReportVolumes(c.Stamp, c.Epoch) : ReportVolumes.Full)).ToArray();
        _ = Run();

        async Task Run()
        {
            var hosts = await Task.WhenAll(addresses.Select(async a => (a, await Try(Agent(a).Ask<HostDescription>(DescribeHost.Instance, timeout)).ConfigureAwait(false)))).ConfigureAwait(false);
            var reports = await Task.WhenAll(asks.Select(async x => (x.Address, await Try(Agent(x.Address).Ask<VolumeReports>(x.Ask, timeout)).ConfigureAwait(false)))).ConfigureAwait(false);
            var answered = reports.Where(r => r.Item2 is not null).Select(r => (r.Address, r.Item2!)).ToArray();
            self.Tell(new Gathered(hosts.Where(h => h.Item2 is not null).Select(h => (h.a, h.Item2!)).ToArray(), answered, started, sweep));
        }
    }

    private static async Task<T?> Try<T>(Task<T> ask) where T : class
    {
        try { return await ask.ConfigureAwait(false); }
        catch (Exception) { return null; }
    }

    /// <summary>False when the member at <paramref name="address"/> speaks for a host it is not: it failed its proof, or
    /// another member proved to be that host, or (with its proof done) it proved to be another host.</summary>
    private bool SpeaksFor(string address, string host)
    {
        if (_proven.IsRefused(address)) return false;
        if (_proven.OfAddress(address) is { } at) return at.HostId.ToString() == host;
        return !Id160.TryParse(host, out var id) || _proven.OfHost(id) is null;
    }

    private void OnGathered(Gathered g)
    {
        foreach (var (address, h) in g.Hosts)
        {
            if (h.Address != address || !SpeaksFor(address, h.HostId)) continue;
            _hosts[h.HostId] = h;
            if (h.DeviceFailure is not null) OnDeviceFailed(h.HostId, h.Address, h.DeviceFailure);
            // Healthy in a description asked for after the failure was known: a new incarnation on a good device.
            else if (_deviceFailed.TryGetValue(h.HostId, out var failed) && failed.Since < g.Started && _deviceFailed.Remove(h.HostId))
                _log.Warning("host {0} ({1}) is back with a working log device", h.HostId, h.Address);
        }
        var now = DateTime.UtcNow;
        foreach (var host in _hosts.Keys)
            if (LiveAddressOf(host) is not null) _absentSince.Remove(host);
            else _absentSince.TryAdd(host, now);
        var touched = new Table(this);
        var reports = g.Reports.Where(r => SpeaksFor(r.Address, r.Reports.HostId)).ToArray();
        // A host that reported before and did not answer this round (away, busy, another host at its address) is asked
        // for everything when it answers again; meanwhile its copies no longer count.
        var answeredBy = reports.ToDictionary(r => r.Address, r => r.Reports.HostId);
        foreach (var (address, cursor) in _cursors.ToArray())
            if (!answeredBy.TryGetValue(address, out var host) || host != cursor.HostId)
            {
                _cursors.Remove(address);
                touched.DropHost(cursor.HostId);
            }
        foreach (var (address, report) in reports)
        {
            touched.Apply(report);
            _cursors[address] = new ReportCursor(report.HostId, report.Epoch, report.Stamp);
        }
        touched.Commit();
        var creates = _creates.ToArray();
        _creates.Clear();
        var members = Members();
        foreach (var (request, replyTo, rounds, since) in creates)
        {
            // Enough members, not enough hosts yet: a member that did not answer this round (busy, just joined) gets two
            // more rounds, and the create waits up to three asks long for members still becoming hosts. Fewer members
            // than replicas fails at once.
            if (LiveHosts().Count(h => h.FreeBytes > 0) < request.Replicas && members >= request.Replicas
                && (rounds < 2 || now - since < _settings.AskTimeout * 3))
                _creates.Add((request, replyTo, rounds + 1, since));
            else
                Create(request, replyTo, since);
        }
        // What changed, what waits for something (a failover, a host away), or everything in a sweep.
        var reconcile = g.Sweep ? _volumes.Keys.ToHashSet() : touched.Changed;
        reconcile.UnionWith(_attention);
        foreach (var id in reconcile)
            if (_volumes.TryGetValue(id, out var r)) Reconcile(r, g.Sweep);
            else _attention.Remove(id);
        // Asked again soon, not at once: a proof under way takes a round trip, not a busy loop of rounds.
        if (_creates.Count > 0) Timers.StartSingleTimer("creates", Tick.Instance, TimeSpan.FromMilliseconds(50));
        SurveyLags();
    }

    /// <summary>The round's last step: each primary with a lagging replica measures its lag in bytes (LagSurvey), then
    /// the listings asked for meanwhile are answered and the next round may start.</summary>
    private void SurveyLags()
    {
        var plan = new Dictionary<string, List<LagSurvey.Query>>();
        foreach (var id in _lagging)
        {
            if (!_volumes.TryGetValue(id, out var r) || LaggingReplicas(r) is not { } lagging) continue;
            if (AddressOf(r.Primary!) is not { } address) continue;
            if (!plan.TryGetValue(address, out var queries)) plan[address] = queries = [];
            foreach (var (host, lsn) in lagging) queries.Add(new LagSurvey.Query(id, host, lsn));
        }
        if (plan.Count == 0) { OnSurveyed(new Surveyed([])); return; }
        var system = _system;
        LagSurvey.MeasureAsync(plan, a => system.ActorSelection(a + HostAgent.Path), _settings.AskTimeout)
            .PipeTo(Self, success: lags => new Surveyed(lags), failure: _ => new Surveyed([]));
    }

    private void OnSurveyed(Surveyed s)
    {
        _lagBytes = s.Lags;
        _gathering = false;
        foreach (var (request, replyTo) in _listers) replyTo.Tell(Page(request));
        _listers.Clear();
    }

    /// <summary>The replicas of <paramref name="r"/> behind its primary and the lsn each stands at (reported, else last
    /// known, else 0: no copy), when its primary is the writable holder of its newest view; null when none is behind.</summary>
    private static List<(string Host, long Lsn)>? LaggingReplicas(VolumeRecord r) =>
        LagSurvey.Behind(r.Replicas, r.Primary, r.View, r.Reports, r.KnownLsns);

    /// <summary>
    /// One round's changes to placement's table: the hosts' reports (a full one replaces what its host reported before,
    /// a delta adds and removes), and hosts that stopped answering. Each volume touched is merged once, at
    /// <see cref="Commit"/>, from every host's copy: its newest view decides the replica set, and that view's writable
    /// holder with the longest chain is the primary.
    /// </summary>
    private sealed class Table(PlacementActor placement)
    {
        // The copies of each touched volume as they stand after this round's reports.
        private readonly Dictionary<string, Dictionary<string, VolumeReport>> _copies = new();

        /// <summary>The volumes whose record changed (or went away) this round.</summary>
        public HashSet<string> Changed { get; } = new();

        private Dictionary<string, VolumeReport> CopiesOf(string id)
        {
            if (_copies.TryGetValue(id, out var copies)) return copies;
            copies = placement._volumes.TryGetValue(id, out var r) ? new Dictionary<string, VolumeReport>(r.Reports) : new();
            _copies[id] = copies;
            return copies;
        }

        /// <summary>A host away: its copies no longer count, except where it is the only host that reported the volume
        /// (the volume stays known, as it was, until someone reports it again), and its followers no longer report.</summary>
        public void DropHost(string host)
        {
            if (placement._heldBy.TryGetValue(host, out var held))
                foreach (var id in held.ToArray())
                {
                    var copies = CopiesOf(id);
                    if (copies.Count == 1 && copies.ContainsKey(host)) continue;
                    copies.Remove(host);
                    held.Remove(id);
                }
            if (placement._syncsOf.Remove(host, out var followed))
                foreach (var id in followed)
                    if (placement._syncs.TryGetValue(id, out var syncs) && syncs.Remove(host))
                    {
                        if (syncs.Count == 0) placement._syncs.Remove(id);
                        Changed.Add(id);
                    }
        }

        public void Apply(VolumeReports report)
        {
            var host = report.HostId;
            if (!placement._heldBy.TryGetValue(host, out var held)) placement._heldBy[host] = held = new HashSet<string>();
            if (!placement._syncsOf.TryGetValue(host, out var followed)) placement._syncsOf[host] = followed = new HashSet<string>();
            IEnumerable<string> removed = report.Removed ?? [];
            IEnumerable<string> stopped = report.RemovedSyncs ?? [];
            if (report.Full)
            {
                // What the host held or followed before and is not in its full report, it no longer does.
                var now = report.Volumes.Select(v => v.Id).ToHashSet();
                removed = held.Where(id => !now.Contains(id)).ToArray();
                var following = (report.Syncs ?? []).Select(s => s.Volume).ToHashSet();
                stopped = followed.Where(id => !following.Contains(id)).ToArray();
            }
            foreach (var id in removed)
            {
                held.Remove(id);
                if (CopiesOf(id).Remove(host)) Gone.Add(id);
            }
            foreach (var v in report.Volumes)
            {
                held.Add(v.Id);
                CopiesOf(v.Id)[host] = v;
            }
            foreach (var id in stopped)
            {
                followed.Remove(id);
                if (placement._syncs.TryGetValue(id, out var syncs) && syncs.Remove(host))
                {
                    if (syncs.Count == 0) placement._syncs.Remove(id);
                    Changed.Add(id);
                }
            }
            foreach (var s in report.Syncs ?? [])
            {
                followed.Add(s.Volume);
                if (!placement._syncs.TryGetValue(s.Volume, out var syncs)) placement._syncs[s.Volume] = syncs = new Dictionary<string, ReplicaSync>();
                syncs[host] = s;
                Changed.Add(s.Volume);
            }
        }

        // Volumes a host that answered reported without (it dropped its copy): gone when no copy is left.
        private HashSet<string> Gone { get; } = new();

        public void Commit()
        {
            foreach (var (id, copies) in _copies)
            {
                Changed.Add(id);
                placement._volumes.TryGetValue(id, out var before);
                if (copies.Count == 0)
                {
                    // Every host that held it answered without it (each purged its copy): gone.
                    if (Gone.Contains(id) && before is not null) placement.Forget(before);
                    continue;
                }
                if (placement._purged.Contains(id))
                {
                    // Purged while these hosts were away: they purge their copies now.
                    foreach (var host in copies.Keys)
                        if (placement.ChoosableAddressOf(host) is { } address) placement.Agent(address).Tell(new PurgeLocalVolume(id));
                    continue;
                }
                placement.Keep(Merge(id, copies, before));
            }
        }

        private static VolumeRecord Merge(string id, Dictionary<string, VolumeReport> held, VolumeRecord? before)
        {
            var newest = held.Values.OrderByDescending(r => r.ViewNumber).ThenByDescending(r => r.Lsn).First();
            var primary = held.Where(kv => kv.Value.Writable && kv.Value.ViewNumber == newest.ViewNumber)
                .OrderByDescending(kv => kv.Value.Lsn).Select(kv => kv.Key).FirstOrDefault();
            // A primary that does not answer (unreachable, busy) is still the primary until a failover says otherwise.
            primary ??= before?.Primary;
            var version = primary is not null && held.TryGetValue(primary, out var p) ? p : newest;
            // A replica host whose copy does not count keeps the head it last reported (none: it never held a copy here).
            var known = new Dictionary<string, long>();
            foreach (var host in newest.Replicas)
                if (held.TryGetValue(host, out var copy)) known[host] = copy.Lsn;
                else if (before is not null && before.KnownLsns.TryGetValue(host, out var lsn)) known[host] = lsn;
            return new VolumeRecord(id, newest.Size, newest.Mode, newest.Replicas, primary, version.Lsn, version.Version,
                newest.ViewNumber, newest.BranchedFrom, held)
            {
                Name = newest.Name, TrashedAtUnixMs = newest.TrashedAtUnixMs, KnownLsns = known,
            };
        }
    }

    /// <summary>A volume's record as merged now: in the table, its name and order kept, and whether it lags.</summary>
    private void Keep(VolumeRecord r)
    {
        if (!_volumes.ContainsKey(r.Id))
        {
            _order = null;
            if (r.Name is not null) _names?.TryAdd(r.Name, r.Id);
        }
        _volumes[r.Id] = r;
        if (LaggingReplicas(r) is not null) _lagging.Add(r.Id);
        else _lagging.Remove(r.Id);
        // A replica host this singleton never saw (it died before the singleton moved here) is absent too.
        foreach (var host in r.Replicas)
            if (!_hosts.ContainsKey(host)) _absentSince.TryAdd(host, DateTime.UtcNow);
    }

    /// <summary>A volume no host holds any more: out of the table.</summary>
    private void Forget(VolumeRecord r)
    {
        if (!_volumes.Remove(r.Id)) return;
        _order = null;
        if (r.Name is not null && _names is not null && _names.TryGetValue(r.Name, out var id) && id == r.Id) _names.Remove(r.Name);
        _lagging.Remove(r.Id);
        _attention.Remove(r.Id);
        _syncs.Remove(r.Id);
        foreach (var held in _heldBy.Values) held.Remove(r.Id);
    }

    /// <param name="sweep">Every replica is told to follow, also one whose host reports a follower of the volume.</param>
    private void Reconcile(VolumeRecord r, bool sweep = false)
    {
        _attention.Remove(r.Id);
        if (r.Replicas.Length < 2) return;
        // Being purged, or in the trash past cloudfs.trash.keep: each host purges its copy; none follows or takes it over.
        if (_purging.Contains(r.Id) || (r.TrashedAtUnixMs != 0 && DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - r.TrashedAtUnixMs >= _trashKeep.TotalMilliseconds)) return;
        var primaryAddress = LiveAddressOf(r.Primary);
        if (primaryAddress is null)
        {
            if (!_failovers.Contains(r.Id) && (!_failoverAfter.TryGetValue(r.Id, out var after) || DateTime.UtcNow >= after)) StartFailover(r);
            // Looked at every round until it has a live primary again.
            _attention.Add(r.Id);
            return;
        }
        // Every other live replica follows the primary: told so when its host reports no follower of the volume (it
        // starts one; one that misses the volume pulls it whole), or still reports its copy writable (a primary of an
        // older view that came back: it steps down), and in a sweep.
        var syncs = _syncs.GetValueOrDefault(r.Id);
        var settled = true;
        foreach (var host in r.Replicas)
        {
            if (host == r.Primary) continue;
            if (ChoosableAddressOf(host) is not { } address) { settled = false; continue; }
            var staleWriter = r.Reports.TryGetValue(host, out var copy) && copy.Writable;
            if (!sweep && !staleWriter && syncs is not null && syncs.ContainsKey(host)) continue;
            Agent(address).Tell(new FollowVolume(r.Id));
            settled = false;
        }
        ReplaceLongAbsent(r, primaryAddress);
        // A replica host away (replaced once away long enough) or told to follow: looked at again next round.
        if (!settled) _attention.Add(r.Id);
    }

    /// <summary>A replica host absent longer than ReplaceAfter is replaced by the live host of highest weight for
    /// the volume id (Placement.Weight) outside the set: the primary records the new set with a view change, the new host streams it.</summary>
    private void ReplaceLongAbsent(VolumeRecord r, string primaryAddress)
    {
        if (_replacing.Contains(r.Id)) return;
        var now = DateTime.UtcNow;
        var gone = r.Replicas.FirstOrDefault(h => h != r.Primary && _absentSince.TryGetValue(h, out var since) && now - since >= _settings.ReplaceAfter);
        if (gone is null) return;
        var candidates = LiveHosts().Where(h => h.FreeBytes > 0 && !r.Replicas.Contains(h.HostId)).Select(h => Id160.Parse(h.HostId));
        var chosen = Placement.Choose(Id160.Parse(r.Id), candidates, 1);
        if (chosen.Count == 0) return;
        var replacement = chosen[0].ToString();
        var replicas = r.Replicas.Select(h => h == gone ? replacement : h).ToArray();
        _replacing.Add(r.Id);
        _log.Warning("volume {0}: replica host {1} has been away for {2:0} s; replacing it with {3}", r.Id, gone,
            (now - _absentSince[gone]).TotalSeconds, replacement);
        var self = Self;
        var timeout = _settings.AskTimeout;
        var newAddress = ChoosableAddressOf(replacement)!;
        _ = Run();

        async Task Run()
        {
            try
            {
                var reply = await Agent(primaryAddress).Ask<object>(new ChangeReplicas(r.Id, replicas), timeout * 5).ConfigureAwait(false);
                if (reply is not VolumeReport) { self.Tell(new ReplacementEnded(r.Id, (reply as ControlFailed)?.Reason ?? reply.GetType().Name)); return; }
                Agent(newAddress).Tell(new FollowVolume(r.Id), self);
                self.Tell(new ReplacementEnded(r.Id, null));
            }
            catch (Exception e)
            {
                self.Tell(new ReplacementEnded(r.Id, e.GetBaseException().Message));
            }
        }
    }

    /// <summary>Members joining or Up that are not lost: the hosts a create may count on, described yet or not (this node
    /// has not seen them Up, their identity proof is under way, or they have not described themselves in a round).</summary>
    /// <summary>How long after it was asked for a create whose chosen host did not vote is tried again: three asks, so
    /// a last fresh round (its asks) and vote still end inside management's wait for placement (eight asks).</summary>
    private TimeSpan VoteRetryWindow => _settings.AskTimeout * 3;

    private int Members() => _cluster.State.Members.Count(m => m.Status is Akka.Cluster.MemberStatus.Joining or Akka.Cluster.MemberStatus.WeaklyUp
        or Akka.Cluster.MemberStatus.Up && !_lost.Contains(m.UniqueAddress));

    // ---- creation: prepare on every chosen host, commit on the primary, then the replicas follow ----

    /// <param name="since">When the create was asked for. A chosen host that does not vote (busy, or gone since the last
    /// round) sends the request to a fresh round instead of failing it, nothing being created yet, for as long as
    /// <see cref="VoteRetryWindow"/> allows: management waits for placement's answer longer than that.</param>
    private void Create(PlaceVolume p, IActorRef replyTo, DateTime since)
    {
        var live = LiveHosts().Where(h => h.FreeBytes > 0).ToArray();
        if (p.Replicas < 1) { replyTo.Tell(new CommandFailed($"a volume needs at least 1 replica, not {p.Replicas}")); return; }
        if (live.Length < p.Replicas)
        {
            // Too few members: the cluster's size is the answer, even while some of them are still becoming hosts.
            var members = Members();
            replyTo.Tell(new CommandFailed($"only {(members < p.Replicas ? Math.Max(members, live.Length) : live.Length)} host(s) found"));
            return;
        }
        if (p.Name is { } name)
        {
            if (Named(name) is { } taken)
            { replyTo.Tell(new CommandFailed($"the name '{name}' is taken by volume {taken.Id}{(taken.TrashedAtUnixMs != 0 ? " (in the trash)" : "")}")); return; }
            if (!_namesInCreation.Add(name)) { replyTo.Tell(new CommandFailed($"the name '{name}' is taken by a volume being created")); return; }
        }
        // The volume id depends on the primary's fresh secret, so it cannot be known before creation: the set is
        // placed by a random key (uniform, so volumes spread evenly), the host of highest weight being the primary.
        var key = Id160.Random();
        var byId = live.ToDictionary(h => Id160.Parse(h.HostId));
        var chosen = Placement.Choose(key, byId.Keys, p.Replicas).Select(id => byId[id]).ToArray();
        var self = Self;
        var log = _log;
        var timeout = _settings.AskTimeout;
        var createTimeout = _settings.CreateTimeout;
        var retryWindow = VoteRetryWindow;
        _ = Run();

        async Task Run()
        {
            try
            {
                var votes = await Task.WhenAll(chosen.Select(async h =>
                    (Host: h, Vote: await Try(Agent(h.Address).Ask<Vote>(new PrepareVolume(p.SizeBytes), timeout)).ConfigureAwait(false)))).ConfigureAwait(false);
                foreach (var (host, vote) in votes)
                {
                    if (vote is null && DateTime.UtcNow - since < retryWindow)
                    {
                        // Its name is free again first: the next attempt takes it anew (messages to self keep their order).
                        self.Tell(new CreateAbandoned(p.Name));
                        self.Tell(new PlaceAfterRound(p, replyTo, since));
                        return;
                    }
                    if (vote is null) { self.Tell(new CreateAbandoned(p.Name)); replyTo.Tell(new CommandFailed($"host {host.HostId} ({host.Address}) did not answer; no volume was created")); return; }
                    if (!vote.Yes) { self.Tell(new CreateAbandoned(p.Name)); replyTo.Tell(new CommandFailed($"host {host.HostId} cannot take the volume: {vote.Reason}; no volume was created")); return; }
                }
                var primary = chosen[0];
                var reply = await Agent(primary.Address).Ask<object>(new CreateLocalVolume(p.SizeBytes, p.Mode, chosen.Select(h => h.HostId).ToArray(), p.Name), createTimeout).ConfigureAwait(false);
                if (reply is not VolumeReport created)
                {
                    self.Tell(new CreateAbandoned(p.Name));
                    replyTo.Tell(new CommandFailed($"host {primary.HostId} could not create the volume: {(reply as ControlFailed)?.Reason ?? reply.GetType().Name}"));
                    return;
                }
                // Committed: the creation entry is durable on the primary and lists the replica set; the replicas
                // pull it (and everything after it) from there, now or whenever they come back.
                self.Tell(new Created(created, primary.HostId));
                var waits = chosen.Skip(1).Select(async h =>
                {
                    // Its share of the secret first (a failover needs a majority of shares from the first write on),
                    // then the volume itself.
                    // Sealed by the primary to the key the host proved to it: placement names the host, never a key.
                    if (await Try(Agent(primary.Address).Ask<ShareDto>(new RequestShare(created.Id, h.HostId), timeout)).ConfigureAwait(false) is { } share)
                        await Try(Agent(h.Address).Ask<ShareKept>(new KeepShare(share), timeout)).ConfigureAwait(false);
                    Agent(h.Address).Tell(new FollowVolume(created.Id), self);
                    var held = await Try(Agent(h.Address).Ask<object>(new AwaitVolume(created.Id, (long)createTimeout.TotalMilliseconds), createTimeout + timeout)).ConfigureAwait(false);
                    return held is VolumeHeld;
                });
                var ok = await Task.WhenAll(waits).ConfigureAwait(false);
                if (ok.Any(x => !x))
                    // A replica that missed it catches up from the primary when it returns (the creation entry names it).
                    log.Warning("volume {0}: {1} replica(s) did not receive it yet; they will catch up", created.Id, ok.Count(x => !x));
                replyTo.Tell(new VolumeCreated(created.Id, chosen.Select(h => new HostAddress(h.HostId, h.Address)).ToArray()));
            }
            catch (Exception e)
            {
                self.Tell(new CreateAbandoned(p.Name));
                replyTo.Tell(new CommandFailed($"creating the volume failed: {e.GetBaseException().Message}"));
            }
        }
    }

    // ---- purge: every host holding the volume drops its copy (each refuses one not in the trash) ----

    private void Purge(string volume, IActorRef replyTo)
    {
        if (!_volumes.TryGetValue(volume, out var r)) { replyTo.Tell(new PurgeDone(volume, [], [], $"no volume {volume} on this cluster")); return; }
        if (r.TrashedAtUnixMs == 0) { replyTo.Tell(new PurgeDone(volume, [], [], $"volume {volume} is not in the trash; `cloudfs rm` moves it there first")); return; }
        if (!_purging.Add(volume)) { replyTo.Tell(new PurgeDone(volume, [], [], $"volume {volume} is being purged already")); return; }
        // The replicas first, the primary last: no host is left following a primary that no longer holds the volume.
        var holders = r.Replicas.Concat(r.Reports.Keys).Distinct().OrderBy(h => h == r.Primary ? 1 : 0).ToArray();
        var targets = holders.Select(h => (Host: h, Address: ChoosableAddressOf(h))).ToArray();
        var self = Self;
        var timeout = _settings.AskTimeout;
        _ = Run();

        async Task Run()
        {
            var purged = new List<string>();
            var away = new List<string>();
            string? error = null;
            foreach (var (host, address) in targets)
            {
                if (address is null) { away.Add(host); continue; }
                var reply = await Try(Agent(address).Ask<object>(new PurgeLocalVolume(volume), timeout * 3)).ConfigureAwait(false);
                switch (reply)
                {
                    case VolumePurged p: if (p.Held) purged.Add(host); break;
                    case ControlFailed f: error ??= $"host {host}: {f.Reason}"; break;
                    default: away.Add(host); break;
                }
            }
            self.Tell(new PurgeEnded(volume, replyTo, new PurgeDone(volume, purged.ToArray(), away.ToArray(), error)));
        }
    }

    // ---- failover ----

    private void StartFailover(VolumeRecord r)
    {
        var candidates = FailoverCandidates(r);
        var majority = Placement.Majority(r.Replicas.Length);
        var witnesses = Witnesses(r);
        if (candidates.Length + witnesses.Length < majority) return; // the minority side never fails over
        _failovers.Add(r.Id);
        var self = Self;
        var timeout = _settings.AskTimeout;
        var log = _log;
        log.Warning("volume {0}: primary {1} is lost{2}; failing over among {3}", r.Id, r.Primary ?? "-",
            DeviceFailed(r.Primary) ? " (its log device failed)" : "", string.Join(",", candidates.Select(c => c.Host)));
        _ = Run();

        async Task Run()
        {
            try
            {
                // 1. Fence: each candidate stops following (acknowledging) the old primary and says what it holds.
                var fenced = (await Task.WhenAll(candidates.Select(async c =>
                        (c.Host, c.Address, Fenced: await Try(Agent(c.Address).Ask<Fenced>(new FenceVolume(r.Id), timeout * 3)).ConfigureAwait(false))))
                    .ConfigureAwait(false))
                    .Where(x => x.Fenced?.Volume is not null).ToArray();
                var witnessHeads = (await Task.WhenAll(witnesses.Select(async w =>
                        (Address: w, Fenced: await Try(Agent(w).Ask<Fenced>(new FenceVolume(r.Id), timeout * 3)).ConfigureAwait(false))))
                    .ConfigureAwait(false))
                    .Where(x => x.Fenced?.Volume is not null).ToArray();
                // A witness counts toward the majority only when a candidate holds its whole head: then every
                // acknowledged write it holds is on the chosen one, and it can append nothing more.
                var longest = fenced.Length == 0 ? -1 : fenced.Max(x => x.Fenced!.Volume!.Lsn);
                var counted = witnessHeads.Where(w => w.Fenced!.Volume!.Lsn <= longest).ToArray();
                if (fenced.Length == 0 || fenced.Length + counted.Length < majority)
                {
                    self.Tell(new FailoverEnded(r.Id, null, $"only {fenced.Length} of {r.Replicas.Length} replicas answered; a majority ({majority}) is needed"));
                    return;
                }
                // 2. The most up-to-date: every write acknowledged in sync mode is on a majority, so on one of these.
                var volumeId = Id160.Parse(r.Id);
                var chosen = fenced.OrderByDescending(x => x.Fenced!.Volume!.Lsn).ThenByDescending(x => Placement.Weight(volumeId, Id160.Parse(x.Host))).First();
                // 3. Shares of the secret, re-sealed for the chosen host by the others (witnesses too), each to the key
                //    the chosen host proved to that host.
                var releasers = fenced.Where(x => x.Host != chosen.Host).Select(x => x.Address).Concat(witnessHeads.Select(w => w.Address));
                var shares = (await Task.WhenAll(releasers.Select(address =>
                        Try(Agent(address).Ask<ShareDto>(new ReleaseShare(r.Id, chosen.Host), timeout)))).ConfigureAwait(false))
                    .OfType<ShareDto>().ToArray();
                // 4. Take over: the view change, the chosen host first in the replica set.
                var replicas = new[] { chosen.Host }.Concat(r.Replicas.Where(h => h != chosen.Host)).ToArray();
                var reply = await Agent(chosen.Address).Ask<object>(new TakeOverVolume(r.Id, shares, replicas), timeout * 5).ConfigureAwait(false);
                if (reply is not VolumeReport)
                {
                    self.Tell(new FailoverEnded(r.Id, null, (reply as ControlFailed)?.Reason ?? reply.GetType().Name));
                    return;
                }
                self.Tell(new FailoverEnded(r.Id, chosen.Host, null));
                // 5. The others follow the new primary (lifts their fence).
                foreach (var x in fenced.Where(x => x.Host != chosen.Host)) Agent(x.Address).Tell(new FollowVolume(r.Id), self);
            }
            catch (Exception e)
            {
                self.Tell(new FailoverEnded(r.Id, null, e.GetBaseException().Message));
            }
        }
    }

    // ---- listing and lookup ----

    /// <summary>Unhealthy-only pages look at this many volumes at most (a bounded step; the lister follows Next).</summary>
    private const int UnhealthyScan = 16 * ListVolumePage.MaxLimit;

    private VolumePage Page(ListVolumePage p)
    {
        var order = _order ??= _volumes.Keys.Order(StringComparer.Ordinal).ToArray();
        var limit = Math.Clamp(p.Limit, 1, ListVolumePage.MaxLimit);
        var summaries = new Dictionary<string, VolumeSummary>();
        var (ids, next) = VolumePaging.Page(order, p.After, limit, p.UnhealthyOnly ? UnhealthyScan : limit, id =>
        {
            if (!_volumes.TryGetValue(id, out var r) || (r.TrashedAtUnixMs != 0) != p.InTrash) return false;
            var summary = Summarize(r);
            if (p.UnhealthyOnly && summary.Health == VolumeHealth.Healthy) return false;
            summaries[id] = summary;
            return true;
        });
        var failed = _deviceFailed.OrderBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => new HostFailure(f.Key, f.Value.Address, f.Value.Reason)).ToArray();
        return new VolumePage(ids.Select(id => summaries[id]).ToArray(), next, failed);
    }

    /// <summary>A volume by its id, or by its name (names are unique in the cluster, so one lookup of either).</summary>
    private VolumeLocation Locate(string volume) =>
        (Id160.TryParse(volume, out var id) ? _volumes.GetValueOrDefault(id.ToString()) : Named(volume)) is { } r
            ? new VolumeLocation(Summarize(r), LiveAddressOf(r.Primary))
            : new VolumeLocation(null, null);

    /// <summary>The volume named <paramref name="name"/>, from an index rebuilt when the set of volumes changes.</summary>
    private VolumeRecord? Named(string name)
    {
        _names ??= _volumes.Values.Where(v => v.Name is not null).GroupBy(v => v.Name!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First().Id, StringComparer.Ordinal);
        return _names.TryGetValue(name, out var id) ? _volumes.GetValueOrDefault(id) : null;
    }

    private VolumeSummary Summarize(VolumeRecord r)
    {
        var replicas = r.Replicas.Length == 0 ? r.Reports.Keys.ToArray() : r.Replicas;
        var live = LiveAddresses();
        var syncs = _syncs.GetValueOrDefault(r.Id);
        var inputs = replicas.Select(h =>
        {
            // Away: not Up and reachable, or its device failed (the volume runs on the others, if a majority).
            var isLive = !DeviceFailed(h) && AddressOf(h) is { } a && live.Contains(a);
            long? known = r.Reports.TryGetValue(h, out var copy) ? copy.Lsn : r.KnownLsns.TryGetValue(h, out var lsn) ? lsn : null;
            long? bytes = _lagBytes.TryGetValue((r.Id, h), out var lag) && lag.AfterLsn == (known ?? 0) ? lag.Bytes : null;
            return new VolumeHealth.ReplicaInput(h, isLive, copy, known, syncs?.GetValueOrDefault(h), bytes);
        }).ToArray();
        var health = VolumeHealth.Decide(r.Size, r.Primary, inputs);
        // The protected versions as the report the version comes from has them (the primary's, else the newest).
        var head = r.Primary is not null && r.Reports.TryGetValue(r.Primary, out var p) ? p
            : r.Reports.Values.Where(x => x.Version == r.Version).FirstOrDefault();
        return new VolumeSummary(r.Id, r.Size, r.Mode, r.Primary, replicas, r.Version, r.Name, health.Word, r.BranchedFrom, r.TrashedAtUnixMs,
            health.Replicas, health.Current, health.ResyncPercent) { Protected = head?.Protected ?? [] };
    }
}
