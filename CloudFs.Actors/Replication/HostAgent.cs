// A host's agent (/user/cloudfs-host): answers the placement singleton and the other hosts about this host's log
// (describe, report volumes, prepare/create, fence, shares, take-over, versions), starts a feeder for each follower
// that connects to the feed port, and runs one follower per volume this host replicates but is not the primary of.
// When the log device fails, it stops its followers and tells placement, which hands this host's volumes to healthy
// replicas; the host stays failed until it is restarted on a good device. It proves this host's identity to the
// members that ask (IdentityVerifier), and seals shares only to the keys this node's ProvenHosts holds.
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Identity;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public sealed class HostAgent : ReceiveActor
{
    public const string Name = "cloudfs-host";
    public const string Path = "/user/" + Name;

    private readonly LogStore _store;
    private readonly IActorRef _placement;
    private readonly IActorRef _volumes;
    private readonly FollowerSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _address;
    private readonly ProvenHosts _proven;
    private readonly ClusterTls? _tls;
    private readonly TimeSpan _proofWait;
    private readonly PlacementAuthority _authority;
    // Placement's commands, run once their sender is known to speak for placement.
    private readonly Dictionary<Type, Action<object>> _fromPlacement = new();
    // Volumes fenced for a failover: no follower restarts for them until placement says whom to follow.
    private readonly HashSet<Id160> _fenced = new();
    // The feeders of each volume this host is the primary of: one per replica host (a newer connection replaces an older).
    private readonly Dictionary<Id160, Dictionary<Id160, IActorRef>> _feeders = new();
    private readonly FeedEndpoint _feedEndpoint;
    private long _feedsServed;
    // Who asked for the end of every feed (the node stops); null until someone does, and from then on no feed starts.
    private List<IActorRef>? _feedsEnding;
    // Why the log device failed; null while it works.
    private string? _deviceFailure;
    // The volume actors on this node that write their volume (each owns its chain's claim in the engine).
    private readonly LocalVolumeWriters _writers = LocalVolumeWriters.Get(Context.System);
    // This agent's reports to placement: stamps of another epoch (an agent before this one) are not this one's.
    private readonly long _epoch = Random.Shared.NextInt64(1, long.MaxValue);

    /// <summary>The engine's word that the device failed (told once).</summary>
    private sealed record DeviceFailedHere(string Reason);

    /// <summary>A placement command whose sender was checked off the actor's thread (the view had to catch up).</summary>
    private sealed record PlacementChecked(object Command, string? Refusal);

    /// <summary>This host's writer of <paramref name="Volume"/> answered a step-down (<paramref name="Error"/> null: it
    /// stepped down); the follower placement asked for starts now.</summary>
    private sealed record SteppedDown(Id160 Volume, string Name, IActorRef ReplyTo, string? Error);

    /// <summary>A share release whose recipient was checked off the actor's thread.</summary>
    private sealed record ReleaseRecipientChecked(ReleaseShare Release, ShareHolder? Holder, ControlFailed? Refusal);

    /// <param name="proven">This node's directory of verified members: the only keys shares are sealed to.</param>
    /// <param name="tls">This node's certificates (its proofs are signed with them); null without TLS.</param>
    /// <param name="proofWait">How long a share request waits for a proof under way (a host that joined a moment ago).</param>
    public static Props Props(LogStore store, IActorRef placement, IActorRef volumes, FollowerSettings settings, int feedPort,
        ProvenHosts proven, ClusterTls? tls, TimeSpan proofWait) =>
        Akka.Actor.Props.Create(() => new HostAgent(store, placement, volumes, settings, feedPort, proven, tls, proofWait));

    public HostAgent(LogStore store, IActorRef placement, IActorRef volumes, FollowerSettings settings, int feedPort,
        ProvenHosts proven, ClusterTls? tls, TimeSpan proofWait)
    {
        _store = store;
        _proven = proven;
        _tls = tls;
        _proofWait = proofWait;
        _placement = placement;
        _volumes = volumes;
        _settings = settings;
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        _authority = new PlacementAuthority(cluster, proven, proofWait);
        var self = cluster.SelfAddress;
        _address = self.ToString();
        // Other hosts reach the feed port at the address they reach this member at.
        _feedEndpoint = new FeedEndpoint(self.Host, feedPort);

        Receive<DescribeHost>(_ => Sender.Tell(Describe()));
        Receive<ReportVolumes>(r => Sender.Tell(Report(r)));
        Receive<PrepareVolume>(p => Sender.Tell(Prepare(p)));
        // Header reads (a replica far behind): beside the agent, not on its thread.
        Receive<MeasureLags>(m => Reply(Sender, Task.Run(() => (object)MeasureLags(m))));
        Receive<DeviceFailedHere>(OnDeviceFailed);
        // Off the agent's thread: a creation makes the volume's secret durable (an fdatasync of the key file) before
        // its first await, and creates that run together share that sync instead of queueing behind each other here.
        FromPlacement<CreateLocalVolume>(c => Reply(Sender, Task.Run(() => CreateAsync(c))));
        FromPlacement<FollowVolume>(f =>
        {
            _settings.Counters.FollowCommanded();
            if (Id160.TryParse(f.Volume, out var v))
            {
                _fenced.Remove(v);
                // Placement knows another host is the primary: follow it even if this host's log still holds the
                // secret of an older view (a primary that came back). This host's volume actor owns a writable chain
                // (or claims it when it starts, as after a rejoin): it is asked to step down first, started for it if
                // it is not running yet (its writes in flight complete), so the follower's entries meet no writer and no
                // client's write lands on the old view's chain here.
                if (_store.IsWritable(v))
                {
                    var replyTo = Sender;
                    IActorRef to = _volumes;
                    object stepDown = new Volumes.VolumeEnvelope(_store.HostId, new Volumes.Commands.StepDown(v));
                    if (_writers.TryGet(v, out var writer)) (to, stepDown) = (writer, new Volumes.Commands.StepDown(v));
                    to.Ask<object>(stepDown, _settings.AskTimeout).ContinueWith(t => new SteppedDown(v, f.Volume, replyTo,
                            !t.IsCompletedSuccessfully ? t.Exception?.GetBaseException().Message ?? "cancelled"
                            : t.Result is Volumes.VolumeFailure failure && _store.IsWritable(v) ? failure.Message : null),
                        TaskContinuationOptions.ExecuteSynchronously).PipeTo(Self);
                    return;
                }
                EnsureFollower(v, force: true);
            }
            Sender.Tell(new Following(f.Volume));
        });
        Receive<SteppedDown>(s =>
        {
            if (s.Error is null) _log.Warning("volume {0}: another host is its primary; this host's writer stepped down and follows it", s.Volume);
            // Followed anyway: while the writer keeps its claim the follower's entries are refused, and it tries again.
            else _log.Warning("volume {0}: another host is its primary, but this host's writer did not step down ({1})", s.Volume, s.Error);
            EnsureFollower(s.Volume, force: true);
            s.ReplyTo.Tell(new Following(s.Name));
        });
        Receive<AwaitVolume>(a => Reply(Sender, AwaitAsync(a)));
        FromPlacement<FenceVolume>(f => Reply(Sender, FenceAsync(f)));
        FromPlacement<PurgeLocalVolume>(p => Reply(Sender, PurgeAsync(p)));
        Receive<ProveIdentity>(p => Sender.Tell(ProofCheck.Prove(p, _store.HostId, _address, _store.Ownership.HostPublicKey, _tls)));
        FromPlacement<ReleaseShare>(r =>
        {
            // The recipient's proof may take a moment: checked beside the actor, the release itself runs here.
            var sender = Sender;
            ShareRecipientAsync(Id160.Parse(r.Volume), r.RecipientHost, sender).PipeTo(Self, sender,
                x => new ReleaseRecipientChecked(r, x.Holder, x.Refusal),
                e => new ReleaseRecipientChecked(r, null, new ControlFailed(e.GetBaseException().Message)));
        });
        Receive<ReleaseRecipientChecked>(c =>
        {
            if (c.Refusal is { } refusal) Sender.Tell(refusal);
            else Reply(Sender, ReleaseAsync(Id160.Parse(c.Release.Volume), c.Holder!));
        });
        Receive<RequestShare>(r => Reply(Sender, SealForAsync(r, Sender)));
        FromPlacement<KeepShare>(k =>
        {
            try
            {
                _store.Ownership.StoreShare(k.Share.ToShare());
                Sender.Tell(new ShareKept(k.Share.Volume));
            }
            catch (Exception e) when (e is CloudFsException or FormatException)
            {
                Sender.Tell(new ControlFailed(e.Message));
            }
        });
        FromPlacement<TakeOverVolume>(t => Reply(Sender, TakeOverAsync(t)));
        Receive<GetVersionAt>(g =>
        {
            if (Id160.TryParse(g.Volume, out var v) && _store.GetVolume(v) is { } info && g.Lsn > info.Lsn && g.Lsn <= _store.Streams.PlacedLsn(v))
            {
                // Fed to the replica before this host's own write of it completed (feeds run in parallel with it):
                // answered once it is written, so a replica that asks at that moment is not taken for a fork.
                _store.Streams.WaitForHeadAsync(v, g.Lsn, _settings.AskTimeout / 2)
                    .ContinueWith(_ => VersionAt(g), TaskContinuationOptions.ExecuteSynchronously).PipeTo(Sender);
                return;
            }
            Sender.Tell(VersionAt(g));
        });
        Receive<GetBranchSource>(g => Sender.Tell(new BranchSource(
            Id160.TryParse(g.Volume, out var v) ? _store.GetVolume(v)?.BranchedFrom?.ToString() : null)));
        Receive<HoldsVersion>(h => Sender.Tell(new VersionHeld(Id160.TryParse(h.Volume, out var v) && Id160.TryParse(h.Version, out var version)
            && _store.HoldsVersionAt(v, h.Lsn, version))));
        FromPlacement<ChangeReplicas>(c => Reply(Sender, ChangeReplicasAsync(c)));
        Receive<PlacementChecked>(c =>
        {
            if (c.Refusal is null) _fromPlacement[c.Command.GetType()](c.Command);
            else Refuse(c.Refusal);
        });
        Receive<WhereIsFeed>(_ => Sender.Tell(_feedEndpoint));
        Receive<ServeFeed>(f =>
        {
            // This node is stopping: its replicas follow the primary that takes over, or this one when it is back.
            if (_feedsEnding is not null)
            {
                _ = f.Connection.RefuseAsync($"host {_store.HostId} is stopping");
                return;
            }
            if (RefusedFeed(f.Hello) is { } refusal)
            {
                _log.Warning("feed port: refused a feed of volume {0} to host {1}: {2}", f.Hello.Volume, f.Hello.Follower, refusal);
                _ = f.Connection.RefuseAsync(refusal);
                return;
            }
            if (!_feeders.TryGetValue(f.Hello.Volume, out var feeders)) _feeders[f.Hello.Volume] = feeders = new Dictionary<Id160, IActorRef>();
            // One feed per replica host: a host that connects again (its old connection may not have noticed yet that
            // it is dead) replaces the old one, which stops, and its acknowledgements with it.
            if (feeders.Remove(f.Hello.Follower, out var older)) Context.Stop(older);
            feeders[f.Hello.Follower] = Context.Watch(Context.ActorOf(VolumeFeeder.Props(_store, f, _volumes, _settings.PollWait,
                _settings.AskTimeout + _settings.AskTimeout, _settings.Counters), $"feed-{++_feedsServed}"));
        });
        Receive<WantDurable>(w =>
        {
            if (_feeders.TryGetValue(w.Volume, out var feeders))
                foreach (var feeder in feeders.Values) feeder.Tell(w);
        });
        // A writer starting on this host asks whether a replica host holds a newer view (its copy is an old primary's).
        Receive<ConfirmPrimacy>(c => PrimacyCheck.AskReplicasAsync(Context.System, _proven, _store.HostId, c).PipeTo(Sender));
        Receive<ReadResync>(r => Reply(Sender, Resync.ServeAsync(_store, r)));
        Receive<FollowHeldVolumes>(_ => FollowVolumesHeldHere());
        Receive<EndFeeds>(_ => EndEveryFeed(Sender));
        Receive<FollowerStopped>(s => _log.Debug("follower of {0} stopped: {1}", s.Volume, s.Reason));
        Receive<Terminated>(t =>
        {
            foreach (var (volume, feeders) in _feeders)
                foreach (var (host, feeder) in feeders)
                    if (feeder.Equals(t.ActorRef))
                    {
                        feeders.Remove(host);
                        if (feeders.Count == 0) _feeders.Remove(volume);
                        if (_feeders.Count == 0) TellFeedsEnded();
                        return;
                    }
        });
    }

    /// <summary>This node stops (FeedsEndBeforeHandOff): every feed ends, no new one starts, and
    /// <paramref name="asker"/> hears <see cref="FeedsEnded"/> once the feeders have stopped.</summary>
    private void EndEveryFeed(IActorRef asker)
    {
        _feedsEnding ??= new List<IActorRef>();
        _feedsEnding.Add(asker);
        foreach (var feeder in _feeders.Values.SelectMany(f => f.Values)) Context.Stop(feeder);
        if (_feeders.Count == 0) TellFeedsEnded();
    }

    private void TellFeedsEnded()
    {
        if (_feedsEnding is null) return;
        foreach (var asker in _feedsEnding) asker.Tell(FeedsEnded.Instance);
        _feedsEnding.Clear();
    }

    protected override void PreStart()
    {
        // The members that saw this one Up before this agent existed asked for a proof nobody answered: ask again now.
        // (A node starts its agent before it joins, so there are none at its start; a member that is already Up when
        // an agent starts is one whose agent was restarted.)
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        foreach (var m in cluster.State.Members)
            if (m.UniqueAddress != cluster.SelfUniqueAddress)
                Context.ActorSelection(m.Address + "/user/" + IdentityVerifier.Name).Tell(ReadyToProve.Instance, Self);
        _store.DeviceFailed.PipeTo(Self, success: e => new DeviceFailedHere(e.Message));
        // Every volume held here that another host writes: follow it once this member is Up (its follower asks
        // placement, which this member reaches only then, for the primary).
        var self = Self;
        cluster.RegisterOnMemberUp(() => self.Tell(FollowHeldVolumes.Instance));
    }

    private void FollowVolumesHeldHere()
    {
        foreach (var v in _store.ListVolumes())
            if (!v.IsWritable && v.Replicas.Count > 1) EnsureFollower(v.BaseId, force: false);
    }

    /// <summary>Why a follower's hello is refused, or null: only a host of the volume's replica set other than this one
    /// is fed, from a position this host holds (a position beyond it would let the follower acknowledge what it was
    /// never sent).</summary>
    private string? RefusedFeed(FeedWire.Hello hello)
    {
        if (_store.GetVolume(hello.Volume) is not { } info) return new VolumeNotFoundException(hello.Volume).Message;
        if (hello.Follower == _store.HostId) return $"host {hello.Follower} is this host; it does not feed itself";
        if (!info.Replicas.Contains(hello.Follower))
            return $"host {hello.Follower} is not in the replica set of volume {hello.Volume} ({string.Join(",", info.Replicas)})";
        var placed = _store.Streams.PlacedLsn(hello.Volume);
        if (hello.AfterLsn > placed)
            return $"host {hello.Follower} asks for the entries after lsn {hello.AfterLsn}, beyond lsn {placed}, the last this host holds of volume {hello.Volume}";
        return null;
    }

    /// <summary>What changed since placement last asked this agent (<see cref="_epoch"/>), or everything when it asks
    /// anew: an idle host answers with no volume.</summary>
    private VolumeReports Report(ReportVolumes asked)
    {
        var full = asked.Since <= 0 || asked.Epoch != _epoch;
        var since = full ? 0 : asked.Since;
        // Taken before the looks: a change made meanwhile is in this answer or the next.
        var stamp = ChangeClock.Now;
        // The followers' states before the copies: a follower that reports it caught up has written what it missed,
        // so its copy, looked at after, holds it (the other order showed a replica current with a lag of the entries
        // it wrote in between).
        var (syncs, stopped) = _settings.Syncs.ChangesSince(since);
        var changes = _store.ChangesSince(since);
        var volumes = changes.Changed.Select(ToReport).ToArray();
        _settings.Counters.ReportedToPlacement(volumes.Length);
        return new VolumeReports(_store.HostId.ToString(), volumes, syncs, full,
            full ? null : changes.Removed.Select(v => v.ToString()).ToArray(), full ? null : stopped, _epoch, stamp);
    }

    private HostDescription Describe() =>
        new(_store.HostId.ToString(), _address, (long)_store.FreeSegments * _store.SegmentSize, _deviceFailure);

    /// <summary>
    /// The log device failed (the engine logged it, once, at ERROR): this host acknowledges nothing more as a replica
    /// and gives up its primaries. Placement, told at once (and in every description after), fails its volumes over
    /// to healthy replicas as if it had died. Only a restart on a good device brings it back.
    /// </summary>
    private void OnDeviceFailed(DeviceFailedHere failed)
    {
        if (_deviceFailure is not null) return;
        _deviceFailure = failed.Reason;
        foreach (var child in Context.GetChildren())
            if (Id160.TryParse(child.Path.Name, out _)) child.Tell(VolumeFollower.Stop.Instance);
        var primaries = _store.ListVolumes().Count(v => v.IsWritable && v.Replicas.Count > 1);
        _log.Warning("host {0} gives up its {1} replicated volume(s) as primary and stops following: its log device failed", _store.HostId, primaries);
        _placement.Tell(new HostDeviceFailed(_store.HostId.ToString(), _address, failed.Reason));
    }

    private Vote Prepare(PrepareVolume p)
    {
        if (_deviceFailure is not null) return new Vote(false, $"the log device of host {_store.HostId} failed: {_deviceFailure}");
        // Thin provisioning: a volume needs room to grow, not its whole size; a host with no free segment votes no.
        if (_store.FreeSegments == 0) return new Vote(false, $"host {_store.HostId} has no free space in its log");
        return new Vote(true, null);
    }

    private async Task<object> CreateAsync(CreateLocalVolume c)
    {
        var replicas = c.Replicas.Select(Id160.Parse).ToArray();
        var info = await _store.CreateVolumeAsync(c.SizeBytes, c.Mode, replicas, name: c.Name).ConfigureAwait(false);
        _log.Info("created volume {0} as its primary (replicas {1})", info.BaseId, string.Join(",", c.Replicas));
        return ToReport(info);
    }

    private async Task<object> AwaitAsync(AwaitVolume a)
    {
        var volume = Id160.Parse(a.Volume);
        var deadline = DateTime.UtcNow.AddMilliseconds(a.TimeoutMs);
        while (true)
        {
            if (_store.GetVolume(volume) is { } info) return new VolumeHeld(ToReport(info));
            if (DateTime.UtcNow >= deadline) return new ControlFailed($"host {_store.HostId} did not receive volume {volume} within {a.TimeoutMs} ms");
            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    private async Task<object> FenceAsync(FenceVolume f)
    {
        var volume = Id160.Parse(f.Volume);
        _fenced.Add(volume);
        await StopFollowerAsync(volume).ConfigureAwait(false);
        return new Fenced(_store.HostId.ToString(), _store.GetVolume(volume) is { } info ? ToReport(info) : null);
    }

    /// <summary>Drops this host's copy of a volume in the trash: its follower stops first, so nothing pulls it back.</summary>
    private async Task<object> PurgeAsync(PurgeLocalVolume p)
    {
        if (!Id160.TryParse(p.Volume, out var volume)) return new ControlFailed($"'{p.Volume}' is not a volume id");
        if (_store.GetVolume(volume) is not { } info) return new VolumePurged(p.Volume, _store.HostId.ToString(), Held: false);
        if (!info.IsTrashed) return new ControlFailed($"volume {volume} is not in the trash on host {_store.HostId}");
        _fenced.Add(volume);
        await StopFollowerAsync(volume).ConfigureAwait(false);
        // It stays fenced once purged: no follower of this host pulls it back.
        try { await _store.PurgeVolumeAsync(volume).ConfigureAwait(false); }
        catch (VolumeNotFoundException) { return new VolumePurged(p.Volume, _store.HostId.ToString(), Held: false); }
        catch { _fenced.Remove(volume); throw; }
        _log.Info("purged volume {0} from this host (in the trash since {1:O})", volume, info.TrashedAt);
        return new VolumePurged(p.Volume, _store.HostId.ToString(), Held: true);
    }

    private async Task<object> ReleaseAsync(Id160 volume, ShareHolder recipient)
    {
        // Releasing a share is a vote for the new primary: stop acknowledging the old one first.
        _fenced.Add(volume);
        await StopFollowerAsync(volume).ConfigureAwait(false);
        return ShareDto.From(_store.Ownership.ReleaseShare(volume, recipient));
    }

    /// <summary>
    /// <paramref name="handle"/> runs <typeparamref name="T"/> only when its sender speaks for placement (this node,
    /// or the proven member placement runs on); anything else is answered with one sentence and changes nothing.
    /// </summary>
    private void FromPlacement<T>(Action<T> handle) where T : class
    {
        _fromPlacement[typeof(T)] = m => handle((T)m);
        Receive<T>(m =>
        {
            var command = typeof(T).Name;
            if (_authority.RefusalNow(Sender, command) is null) { handle(m); return; }
            _authority.RefusalAsync(Sender, command).PipeTo(Self, Sender, r => new PlacementChecked(m, r), e => new PlacementChecked(m, e.GetBaseException().Message));
        });
    }

    private void Refuse(string refusal)
    {
        _log.Warning("refused: {0}", refusal);
        if (!Sender.IsNobody()) Sender.Tell(new ControlFailed(refusal));
    }

    private async Task<object> SealForAsync(RequestShare r, IActorRef sender)
    {
        var volume = Id160.Parse(r.Volume);
        var recipient = await ShareRecipientAsync(volume, r.Host, sender).ConfigureAwait(false);
        if (recipient.Refusal is { } refusal) return refusal;
        try
        {
            return ShareDto.From(_store.Ownership.SealShares(volume, [recipient.Holder!])[0]);
        }
        catch (Exception e) when (e is CloudFsException or FormatException)
        {
            return new ControlFailed(e.Message);
        }
    }

    /// <summary>
    /// Whom a share of <paramref name="volume"/> may be sealed for, or why not: the recipient must be a host of the
    /// volume's replica set as this host's own log records it, and a member this node has verified (its key is the one
    /// it proved, never one a message names); the request must come from this node or a verified member. So whoever
    /// asks, only the certified host of the replica set can open the share.
    /// </summary>
    private async Task<(ShareHolder? Holder, ControlFailed? Refusal)> ShareRecipientAsync(Id160 volume, string recipientText, IActorRef sender)
    {
        if (!Id160.TryParse(recipientText, out var host)) return (null, new ControlFailed($"'{recipientText}' is not a host id"));
        if (_store.GetVolume(volume) is not { } info) return (null, new ControlFailed(new VolumeNotFoundException(volume).Message));
        if (!info.Replicas.Contains(host))
            return (null, new ControlFailed($"host {host} is not in the replica set of volume {volume} ({string.Join(",", info.Replicas)}); no share is sealed for it"));
        if (sender.IsNobody()) return (null, new ControlFailed($"a share of volume {volume} was asked for with no sender to answer; refused"));
        var from = sender.Path.Address;
        if (!from.HasLocalScope && from.ToString() != _address
            && await _proven.WaitAsync(p => p.OfAddress(from.ToString()), _proofWait).ConfigureAwait(false) is null)
            return (null, new ControlFailed($"a share of volume {volume} was asked for by {from}, which is not a member that proved its identity to host {_store.HostId}"));
        if (await _proven.WaitAsync(p => p.OfHost(host), _proofWait).ConfigureAwait(false) is not { } proven)
            return (null, new ControlFailed($"host {host} has not proved its identity to host {_store.HostId} (no member is verified as that host); no share of volume {volume} is sealed for it"));
        return (new ShareHolder(host, proven.SealingKey), null);
    }

    private async Task<object> TakeOverAsync(TakeOverVolume t)
    {
        var volume = Id160.Parse(t.Volume);
        _fenced.Add(volume);
        await StopFollowerAsync(volume).ConfigureAwait(false);
        var replicas = t.Replicas.Select(Id160.Parse).ToArray();
        VolumeInfo info;
        if (_writers.TryGet(volume, out var writer))
        {
            // This host already writes the volume: its writer (the chain's owner) makes the view change between its writes.
            var reply = await writer.Ask<object>(new Volumes.Commands.ChangeReplicaSet(volume, replicas), _settings.AskTimeout).ConfigureAwait(false);
            if (reply is Volumes.VolumeFailure f) throw new CloudFsException(f.Message);
            info = _store.GetVolume(volume) ?? throw new VolumeNotFoundException(volume);
        }
        else info = await _store.Ownership.TakeOverAsync(volume, t.Shares.Select(s => s.ToShare()).ToArray(), replicas).ConfigureAwait(false);
        _log.Warning("took over volume {0} as its primary at lsn {1} (view {2})", volume, info.Lsn, info.ViewNumber);
        return ToReport(info);
    }

    private async Task<object> ChangeReplicasAsync(ChangeReplicas c)
    {
        var volume = Id160.Parse(c.Volume);
        if (!_store.IsWritable(volume)) return new ControlFailed($"host {_store.HostId} is not the primary of volume {volume}");
        // The writer's own view change (its secret suffices), made by the volume's actor between its writes.
        var reply = await _volumes.Ask<object>(new Volumes.VolumeEnvelope(_store.HostId, new Volumes.Commands.ChangeReplicaSet(volume, c.Replicas.Select(Id160.Parse).ToArray())),
            TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        if (reply is Volumes.VolumeFailure f) return new ControlFailed(f.Message);
        var info = _store.GetVolume(volume) ?? throw new VolumeNotFoundException(volume);
        _log.Warning("volume {0}: replica set is now {1} (view {2})", volume, string.Join(",", c.Replicas), info.ViewNumber);
        return ToReport(info);
    }

    private object VersionAt(GetVersionAt g)
    {
        if (!Id160.TryParse(g.Volume, out var volume) || _store.GetVolume(volume) is not { } info) return new VersionAnswer(null, 0);
        try
        {
            return new VersionAnswer(_store.VersionAt(volume, g.Lsn).ToString(), info.Lsn);
        }
        catch (CloudFsException)
        {
            return new VersionAnswer(null, info.Lsn);
        }
    }

    private void EnsureFollower(Id160 volume, bool force)
    {
        if (_deviceFailure is not null || _fenced.Contains(volume) || (!force && _store.IsWritable(volume))) return;
        var name = volume.ToString();
        if (!Context.Child(name).IsNobody()) return;
        // Connecting from now on, not from when the follower's loop first runs: a report in between would show a
        // replica behind and not following (outdated) although it is about to.
        _settings.Syncs.Set(volume, new ReplicaSync(name, ReplicaSync.Connecting));
        Context.Watch(Context.ActorOf(VolumeFollower.Props(volume, _store, _placement, _settings), name));
    }

    private async Task StopFollowerAsync(Id160 volume)
    {
        var child = Context.Child(volume.ToString());
        if (child.IsNobody()) return;
        // The follower stops its pull loop and its apply before it stops: nothing more is applied after this.
        await child.GracefulStop(TimeSpan.FromSeconds(10), VolumeFollower.Stop.Instance).ConfigureAwait(false);
    }

    // Slow answers run beside the actor; an exception becomes a ControlFailed with one sentence.
    private void Reply(IActorRef replyTo, Task<object> work)
    {
        work.ContinueWith(t => t.IsCompletedSuccessfully
                ? t.Result
                : new ControlFailed(t.Exception?.GetBaseException().Message ?? "cancelled"),
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(replyTo);
    }

    private LagsMeasured MeasureLags(MeasureLags m)
    {
        var bytes = new long[m.Volumes.Length];
        for (var i = 0; i < bytes.Length; i++)
            bytes[i] = Id160.TryParse(m.Volumes[i], out var v) && i < m.AfterLsns.Length && _store.GetVolume(v) is not null
                ? _store.Streams.StreamBytesAfter(v, m.AfterLsns[i])
                : -1;
        return new LagsMeasured(bytes);
    }

    internal static VolumeReport ToReport(VolumeInfo v) => new(
        v.BaseId.ToString(), v.SizeBytes, v.Mode, v.Replicas.Select(r => r.ToString()).ToArray(), v.Lsn,
        v.CurrentVersion.ToString(), v.IsWritable, v.ViewNumber, v.BranchedFrom?.ToString(), v.Damage.Sum(d => d.Length),
        v.Name, v.TrashedAt?.ToUnixTimeMilliseconds() ?? 0, v.Protected.Count == 0 ? null : v.Protected.Select(p => p.ToString()).ToArray());
}

/// <summary>A follower's end, told to its agent.</summary>
internal sealed record FollowerStopped(Id160 Volume, string Reason);

/// <summary>Told to the host agent by itself once this member is Up: it follows the volumes it holds as a replica.</summary>
internal sealed class FollowHeldVolumes
{
    public static readonly FollowHeldVolumes Instance = new();
    private FollowHeldVolumes() { }
}
