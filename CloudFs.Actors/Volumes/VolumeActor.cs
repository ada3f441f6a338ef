// A volume as a sharded persistent entity: recovers from the engine's head (+ header replay), is the one writer of
// its volume's chain (it claims the chain in the engine, docs/WRITE-PATH.md, and hands each write's entries to the
// engine through that claim, in order, no journal relay and no flush per write; the log's completions answer the
// client), and serves reads and maps from the engine's index.
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Persistence;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Events;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Volumes;

public sealed class VolumeActor : UntypedPersistentActor, IWithTimers
{
    public const string JournalId = "cloudfs.persistence.journal";
    public const string SnapshotStoreId = "cloudfs.persistence.snapshot-store";

    private readonly Id160 _volume;
    private readonly string _persistenceId;
    private readonly LogStore _store;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    // This actor's entries in the engine, not yet completed (their completions answer the clients).
    private readonly AppendsInFlight _inFlight;
    // An entry failed in the log: everything waits until the rest are done, then the actor recovers its head.
    private bool _recoveringHead;
    // A replica-set or lifecycle change waiting for the entries in flight to complete.
    private (IHeadChange Change, IActorRef ReplyTo)? _change;
    private readonly int _eventBytes;
    private VolumeState _state;
    // Sync volumes with replicas: a write is acknowledged once a majority of the replica set holds it in its log (this
    // host counts as one once its own write is stored); a FUA write or a flush once a majority holds it durably.
    private SyncQuorum<IActorRef> _quorum = new(1);
    // How long a request waits for that majority before it fails (cloudfs.volumes.ask-timeout, as a request through
    // another node does): the entry stays in this host's log and reaches the replicas when they follow.
    private readonly TimeSpan _quorumWait;
    private readonly Action<IActorRef, long> _acknowledge = static (replyTo, lsn) => replyTo.Tell(new VolumeAck(lsn));
    // This host's agent, which passes flush requests on to the volume's feeders.
    private readonly ActorSelection _hostAgent = Context.System.ActorSelection(HostAgent.Path);
    // This host's integrity agent: a read that meets a bad block asks it to restore the block from another replica.
    private readonly ActorSelection _integrity = Context.System.ActorSelection(IntegrityAgent.Path);
    private int _replicaCount = 1;
    private HashSet<Id160> _replicas = new();
    private bool _changingReplicas;
    // A writer that just started waits for its replica hosts' views before it takes a request (ConfirmPrimacy).
    private bool _confirming;
    private bool _recoveredFromHead;
    // The gateway repeats a write that is slow to answer; the repeats of one this actor has taken are ignored.
    private readonly RecentRequests _requests = new(8192);
    private long _replayedHeaders;
    private readonly LocalVolumeWriters _writers = LocalVolumeWriters.Get(Context.System);
    // The chain's one owner on this host while this actor is its writer: nothing else extends the chain meanwhile.
    private ChainClaim? _claim;
    // Sharded, an actor lives in the shard of the host its senders took for the volume's primary (HostShard). In
    // another host's shard (placed here while that host had no region) it stands for that host, so it is never the
    // writer here: it answers "not the primary" and the senders ask placement again. Two actors of one volume on a
    // host never both claim its chain.
    private readonly bool _elsewhere;
    // This node's attachment leases of the volumes it writes (one holder per volume, docs/ATTACH.md).
    private readonly WriterAttachments _attachments = WriterAttachments.Get(Context.System);
    // This volume's lease record once an attachment asked for it or wrote under it (the one the writes are checked
    // against; refreshed whenever the lease is asked for, which replaces it after a view change).
    private WriterAttachment? _attachment;

    /// <param name="quorumWait">How long a sync volume's request waits for a majority of its replica set
    /// (cloudfs.volumes.ask-timeout; the built-in value when null).</param>
    /// <param name="shard">The name of the shard it lives in (VolumeEntity gives it; null: its parent's name).</param>
    public static Props Props(Id160 volume, TimeSpan? quorumWait = null, string? shard = null)
    {
        var wait = quorumWait ?? Settings.CloudFsSettings.Default.Volumes.AskTimeout;
        return Akka.Actor.Props.Create(() => new VolumeActor(volume, wait, shard));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Looks for requests that waited for a majority longer than the quorum wait.</summary>
    private sealed record ExpireQuorumWaits
    {
        public static readonly ExpireQuorumWaits Instance = new();
    }

    public VolumeActor(Id160 volume, TimeSpan quorumWait, string? shard = null)
    {
        _volume = volume;
        _quorumWait = quorumWait;
        _persistenceId = volume.ToString();
        _store = CloudFsStorage.Get(Context.System).Store;
        _eventBytes = _store.MaxBlocksPerEntry * LogStore.BlockSize;
        _state = VolumeState.Unknown(volume);
        _inFlight = new AppendsInFlight(volume, Self);
        _elsewhere = HostShard.HostOf(shard ?? Context.Parent.Path.Name) is { } shardHost && shardHost != _store.HostId;
        JournalPluginId = JournalId;
        SnapshotPluginId = SnapshotStoreId;
    }

    public override string PersistenceId => _persistenceId;

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: VolumeHead head }:
                _state = VolumeState.FromHead(head.Info) with { EventBytes = _eventBytes };
                _recoveredFromHead = true;
                break;
            case EntryReplayed e:
                _state = _state.Apply(e, e.Header.Lsn);
                _replayedHeaders++;
                break;
            case RecoveryCompleted:
                // Without a usable snapshot the replay gave lsn and version; size, mode and ownership come from the engine.
                var info = _store.GetVolume(_volume);
                if (info is not null) _state = _state with { Lsn = Math.Max(info.Lsn, _state.Lsn) };
                AdoptHead(info);
                ConfirmPrimacy(info);
                break;
        }
    }

    /// <summary>
    /// A writer that starts for a volume with replicas (in a cluster) takes no request until its replica set's other
    /// hosts have said which view they hold (PrimacyCheck): this host may be a primary that came back after a replica
    /// took the volume over, and a write taken on its old view's chain would be acknowledged and then lost. A newer view
    /// anywhere: it steps down (its host then follows the new primary, and the requests that waited go there).
    /// </summary>
    private void ConfirmPrimacy(VolumeInfo? info)
    {
        if (info is null || _claim is null || info.Replicas.Count < 2 || !InCluster) return;
        _confirming = true;
        var view = info.ViewNumber;
        _hostAgent.Ask<PrimacyChecked>(new ConfirmPrimacy(_volume, view, info.Replicas), PrimacyCheck.Timeout + PrimacyCheck.Timeout)
            .ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : new PrimacyChecked(-1, null), TaskContinuationOptions.ExecuteSynchronously)
            .PipeTo(Self);
    }

    private bool InCluster => Context.System is ExtendedActorSystem { Provider: Akka.Cluster.IClusterActorRefProvider };

    /// <summary>The replica hosts answered (<see cref="ConfirmPrimacy"/>): writes go on, or the writer steps down.</summary>
    private void PrimacyAnswered(PrimacyChecked answer)
    {
        _confirming = false;
        if (_claim is not null && _store.GetVolume(_volume) is { } info && answer.Superseded(info.ViewNumber))
        {
            _log.Warning("volume {0}: host {1} holds view {2}, newer than this host's view {3}: this host was its primary before a "
                + "take-over; its writer steps down, and the host follows the new primary", _persistenceId, answer.Holder, answer.NewestView, info.ViewNumber);
            // Nothing was appended meanwhile: the step-down runs at once, and what waited is handled after it, by a reader.
            _changingReplicas = true;
            _change = (new StepDown(_volume), ActorRefs.Nobody);
            StartChange();
            return;
        }
        Stash.UnstashAll();
    }

    /// <summary>
    /// Takes the volume's head as the engine has it (<paramref name="info"/>; null: it has none): at recovery, and after
    /// this actor's own head change. The writer holds the chain's claim and takes this node's requests directly
    /// (ShardedVolumeGateway); a reader holds neither; a volume that is gone passivates its actor.
    /// </summary>
    private void AdoptHead(VolumeInfo? info)
    {
        if (info is not null)
        {
            _state = VolumeState.FromHead(info) with { Lsn = Math.Max(info.Lsn, _state.Lsn), EventBytes = _eventBytes };
            _replicaCount = Math.Max(1, info.Replicas.Count);
            _quorum = _quorum.For(info.Replicas);
            _replicas = info.Replicas.ToHashSet();
            _inFlight.WaitsForQuorum = IsReplicatedSync;
        }
        else
            _state = _state with { Exists = false };
        if (_elsewhere) _state = _state with { IsWritable = false };
        // A view change renews the attachment lease's record (its view number); the next request asks for it again.
        _attachment = null;
        if (_state.Exists && _state.IsWritable)
        {
            if (_claim is not { IsHeld: true }) ClaimChain();
        }
        else if (_claim is not null)
        {
            _claim.Release();
            _claim = null;
        }
        if (!_state.Exists) Context.Parent.Tell(new Passivate(PoisonPill.Instance));
        if (_state.Exists && _state.IsWritable) _writers.Register(_volume, Self);
        else _writers.Unregister(_volume, Self);
        _quorum.Release(_acknowledge);
    }

    /// <summary>Becomes the one owner of the chain in the engine; a host that stopped being the writer meanwhile recovered
    /// as a reader.</summary>
    private void ClaimChain()
    {
        try { _claim = _store.Ownership.ClaimChain(_volume); }
        catch (Exception e) when (e is NotPrimaryException or VolumeNotFoundException) { _state = _state with { IsWritable = false }; }
    }

    /// <summary>A replica-set, lifecycle or protection change, or a step-down, ended; the actor takes the new head
    /// (<see cref="AdoptHead"/>).</summary>
    private sealed record ReplicaSetChangeEnded(IActorRef ReplyTo, VolumeInfo? Info, Exception? Error);

    /// <summary>A flush of a sync volume is durable here up to <paramref name="Lsn"/>; it waits for a durable majority.</summary>
    private sealed record FlushedHere(long Lsn, IActorRef ReplyTo) : IAnswersTo;

    /// <summary>Thrown to restart (recover) the actor after its head moved outside the journal.</summary>
    internal sealed class HeadMovedException(string message) : Exception(message);

    protected override void OnCommand(object message)
    {
        if (_elsewhere)
        {
            if (message is IWithVolumeId and not ReplicaAck and not ReplicaFeedEnded) Sender.Tell(Failure(new NotPrimaryException(_volume)));
            return;
        }
        if (_confirming)
        {
            if (message is PrimacyChecked answer) PrimacyAnswered(answer);
            else Stash.Stash();
            return;
        }
        if (_changingReplicas)
        {
            // Everything waits until the view change is in the log; the actor then takes the new head and unstashes it.
            if (message is ReplicaSetChangeEnded ended)
            {
                ended.ReplyTo.Tell(ended.Error is null ? new VolumeAck(ended.Info!.Lsn) : Failure(ended.Error));
                // The change was this actor's own, made through its claim: it takes the new head as the engine has it
                // (its view, size, trash, writability) and goes on, with the requests that waited meanwhile.
                _changingReplicas = false;
                AdoptHead(_store.GetVolume(_volume));
                Stash.UnstashAll();
                return;
            }
            if (message is AppendsDrained && _change is not null) StartChange();
            else if (message is not AppendsDrained) Stash.Stash();
            return;
        }
        if (_recoveringHead)
        {
            // The entries chained onto the failed one fail too; once none is left the head is the log's again.
            if (message is AppendsDrained) throw new HeadMovedException($"volume {_persistenceId}: an entry failed in the log; recovering from the head");
            if (message is not AppendFailed) Stash.Stash();
            return;
        }
        switch (message)
        {
            case IHeadChange c:
                if (_claim is null) { Sender.Tell(Failure(new NotPrimaryException(_volume))); break; }
                _changingReplicas = true;
                _change = (c, Sender);
                // After every write in flight is in the log (the engine refuses a view change beside appends; a
                // lifecycle entry, e.g. a shrink, must come after the writes taken before it).
                if (_inFlight.DrainedOrNotify()) StartChange();
                break;
            case Write w:
                if (TakenOver() || Repeated(w.RequestId)) break;
                if (w.Attachment != 0 && Fenced(w.Attachment)) break;
                Append(_state.Decide(w.Offset, w.Data, w.Fua), Sender, w.Fua);
                break;
            case WriteZeroes z:
                if (TakenOver() || Repeated(z.RequestId)) break;
                if (z.Attachment != 0 && Fenced(z.Attachment)) break;
                Append(_state.DecideZeroes(z.Offset, z.Length, z.Fua), Sender, z.Fua);
                break;
            case WriteStored stored:
                // A replicated sync volume's write is in this host's log: it waits for a majority of the replica set.
                if (stored.Write.Fua) { WaitDurable(stored.ReplyTo, stored.Lsn); break; }
                WaitForMajority(stored.ReplyTo, stored.Lsn, durable: false);
                break;
            case AppendFailed failed:
                // Its client was told by the completion. The entries queued after it were chained onto it and fail too,
                // and the engine restarted the chain at its last written entry: recover from there once they are done.
                if (failed.Error.GetBaseException() is DeviceException) _log.Debug("volume {0}: an entry failed, the log device failed: {1}", _persistenceId, failed.Error.Message);
                else _log.Warning("volume {0}: an entry failed in the log ({1}); recovering from the head", _persistenceId, failed.Error.Message);
                _recoveringHead = true;
                if (_inFlight.DrainedOrNotify()) throw new HeadMovedException($"volume {_persistenceId}: an entry failed in the log; recovering from the head");
                break;
            case AppendsDrained:
            case PrimacyChecked: // of an incarnation of this actor before a restart
                break;
            case ReplicaAck a:
                // Only the replica set counts (a host replaced while it was away may still follow for a while).
                if (!_replicas.Contains(a.Host) || a.Host == _store.HostId) break;
                _quorum.Acknowledged(a.Host, a.Feed, a.Lsn, a.DurableLsn);
                _quorum.Release(_acknowledge);
                // Compaction may drop what every other replica holds durably, never what one of them still needs.
                if (_quorum.DurableByAll is { } floor) _store.SetStreamFloor(_volume, floor);
                break;
            case ReplicaFeedEnded e:
                // A host counts only while its feed is connected (it counts again from its next feed's reports).
                _quorum.Withdrawn(e.Host, e.Feed);
                break;
            case FlushedHere f:
                WaitDurable(f.ReplyTo, f.Lsn);
                break;
            case ExpireQuorumWaits:
                _quorum.Expire(Environment.TickCount64 - (long)_quorumWait.TotalMilliseconds, (replyTo, lsn) => replyTo.Tell(new VolumeFailure(
                    VolumeErrorKind.Other, _volume, 0, 0,
                    $"volume {_volume}: no majority of its {_replicaCount} replicas acknowledged lsn {lsn} within {_quorumWait.TotalSeconds:0.#} s; the entry is in the primary's log, not acknowledged")));
                if (_quorum.Waiting == 0) Timers.Cancel(ExpireQuorumWaits.Instance);
                break;
            case Flush f:
                if (!_state.Exists) { Sender.Tell(Failure(new VolumeNotFoundException(_volume))); break; }
                if (f.Attachment != 0 && Fenced(f.Attachment)) break;
                // The entries of every write taken so far are already queued in the log, so the flush covers them too
                // (also those not yet acknowledged).
                _ = FlushAndReply(Sender, _state.Lsn, IsReplicatedSync ? Self : null);
                break;
            case Read r:
                if (_state.CheckRead(r.Offset, r.Length) is { } readError) { Sender.Tell(Failure(readError)); break; }
                // The engine runs device reads on the thread pool itself (holes answer at once), so reads of one
                // volume run in parallel and never hold up its writes; no second hop is needed here.
                _ = ReadAndReply(r, Sender, _replicaCount > 1);
                break;
            case Map m:
                if (_state.CheckRead(m.Offset, Math.Min(m.Length, VolumeState.MaxReadBytes)) is { } mapError) { Sender.Tell(Failure(mapError)); break; }
                try { Sender.Tell(new MapResult(_store.Map(_volume, m.Offset, m.Length))); }
                catch (Exception e) { Sender.Tell(Failure(e)); }
                break;
            case ChangedSince c:
                if (!_state.Exists) { Sender.Tell(Failure(new VolumeNotFoundException(_volume))); break; }
                // The engine reads entry headers it does not know yet off the thread pool; the actor goes on meanwhile.
                _ = ChangedAndReply(c, Sender);
                break;
            case ReadVersion rv:
                // The version's own size bounds the read (the engine checks it): not the volume's size now.
                if (!_state.Exists) { Sender.Tell(Failure(new VolumeNotFoundException(_volume))); break; }
                if (rv.Length > VolumeState.MaxReadBytes) { Sender.Tell(Failure(new InvalidRangeException($"a read of {rv.Length} bytes is larger than the limit of {VolumeState.MaxReadBytes}"))); break; }
                _ = ReadVersionAndReply(rv, Sender);
                break;
            case VersionSize vs:
                if (!_state.Exists) { Sender.Tell(Failure(new VolumeNotFoundException(_volume))); break; }
                _ = VersionSizeAndReply(vs, Sender);
                break;
            case AcquireAttachment a:
                if (AttachmentRecord() is { } toAcquire) Sender.Tell(toAcquire.Acquire(a));
                break;
            case ReleaseAttachment r:
                if (AttachmentRecord() is { } toRelease) Sender.Tell(toRelease.Release(r));
                break;
            case GetVolumeStatus:
                Sender.Tell(new VolumeStatus(_state.Lsn, _state.Exists, _recoveredFromHead, _replayedHeaders));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Hands the write's entries to the engine, in order, each expected at the next lsn: the engine builds, chains and
    /// queues them at once (group commit), and their completions answer <paramref name="replyTo"/> (PendingWrite).
    /// </summary>
    private void Append(Decision decision, IActorRef replyTo, bool fua)
    {
        if (decision.Error is { } error) { replyTo.Tell(Failure(error)); return; }
        if (decision.Events.Count == 0) { replyTo.Tell(new VolumeAck(_state.Lsn)); return; }
        var pending = new PendingWrite(replyTo, decision.Events.Count, fua, _inFlight);
        var lsn = _state.Lsn;
        for (var i = 0; i < decision.Events.Count; i++)
        {
            pending.Starting();
            try
            {
                var claim = _claim ?? throw new NotPrimaryException(_volume);
                switch (decision.Events[i])
                {
                    case DataWritten d: claim.AppendData(lsn + 1, d.Offset, d.Data, d.Durable, pending); break;
                    case ZeroesWritten z: claim.AppendZero(lsn + 1, z.Offset, z.Length, z.Durable, pending); break;
                    case var other: throw new NotSupportedException($"a volume appends data and zero entries, not {other.GetType().Name}");
                }
            }
            catch (Exception e)
            {
                // Refused before it took an lsn (range, ownership, a failed device), or the head moved under this actor
                // (someone else appended): nothing of this entry or the ones after it is stored.
                if (e is ChainClaimedException) e = Superseded();
                pending.Refused(e);
                for (var j = i + 1; j < decision.Events.Count; j++) pending.NotStored(e);
                if (e is EntryRejectedException) _inFlight.Failed(e);
                break;
            }
            lsn++;
        }
        if (lsn != _state.Lsn) _state = _state with { Lsn = lsn };
    }

    /// <summary>
    /// The chain's claim went to a successor (a newer actor of this volume recovered as its writer before this one
    /// stopped): this actor is not the writer any more. It answers "not the primary" and passivates, and the gateway's
    /// retry meets the successor.
    /// </summary>
    private NotPrimaryException Superseded()
    {
        _claim = null;
        _state = _state with { IsWritable = false };
        _writers.Unregister(_volume, Self);
        Context.Parent.Tell(new Passivate(PoisonPill.Instance));
        return new NotPrimaryException(_volume);
    }

    /// <summary>The replica-set change, once no entry of this actor's is in flight.</summary>
    private void StartChange()
    {
        var (change, replyTo) = _change!.Value;
        _change = null;
        change.ApplyAsync(_store, _claim)
            .ContinueWith(t => new ReplicaSetChangeEnded(replyTo, t.IsCompletedSuccessfully ? t.Result : null,
                t.IsCompletedSuccessfully ? null : t.Exception?.GetBaseException() ?? new OperationCanceledException()))
            .PipeTo(Self);
    }

    /// <summary>A FUA write or flush waits for a durable majority: the followers are asked to flush up to it now.</summary>
    private void WaitDurable(IActorRef replyTo, long lsn)
    {
        WaitForMajority(replyTo, lsn, durable: true);
        if (_quorum.Waiting > 0) _hostAgent.Tell(new WantDurable(_volume, lsn));
    }

    /// <summary>The request is answered once a majority holds <paramref name="lsn"/>, or fails after the quorum wait.</summary>
    private void WaitForMajority(IActorRef replyTo, long lsn, bool durable)
    {
        _quorum.Wait(replyTo, lsn, durable, Environment.TickCount64);
        _quorum.Release(_acknowledge);
        if (_quorum.Waiting > 0 && !Timers.IsTimerActive(ExpireQuorumWaits.Instance))
            Timers.StartPeriodicTimer(ExpireQuorumWaits.Instance, ExpireQuorumWaits.Instance, QuorumCheckInterval);
    }

    /// <summary>How often waiting requests are looked at: a tenth of the wait, so one fails at most 10 % late.</summary>
    private TimeSpan QuorumCheckInterval => TimeSpan.FromMilliseconds(Math.Max(100, _quorumWait.TotalMilliseconds / 10));

    private bool IsReplicatedSync => _state.Mode == VolumeMode.Sync && _replicaCount > 1;

    /// <summary>
    /// True when this host became the volume's writer (a failover) after this actor recovered as a reader: the actor
    /// then answers "not the primary" and passivates, and the gateway's retry meets a fresh actor recovered from the
    /// engine's new head (journal sequence numbers included).
    /// </summary>
    private bool TakenOver()
    {
        if (_state.IsWritable || !_store.IsWritable(_volume)) return false;
        Sender.Tell(Failure(new NotPrimaryException(_volume)));
        Context.Parent.Tell(new Passivate(PoisonPill.Instance));
        return true;
    }

    /// <summary>The volume's attachment lease when this actor is its writer; otherwise the sender is told why not
    /// (the gateway's retry meets the writer).</summary>
    private WriterAttachment? AttachmentRecord()
    {
        if (!_state.Exists) { Sender.Tell(Failure(new VolumeNotFoundException(_volume))); return null; }
        if (TakenOver()) return null;
        if (_claim is null || _store.GetVolume(_volume) is not { } info) { Sender.Tell(Failure(new NotPrimaryException(_volume))); return null; }
        return _attachment = _attachments.For(_volume, info.ViewNumber);
    }

    /// <summary>
    /// True when a request made under the read-write attachment <paramref name="lease"/> must not change the volume: a
    /// newer holder has it (it lapsed and was taken, or `cloudfs detach` revoked it), or its holder released it. The
    /// sender is told why (NBD: EPERM); nothing is appended. The holder's own requests cost one comparison. Not the
    /// writer (no claim): the append refuses it anyway.
    /// </summary>
    private bool Fenced(long lease)
    {
        var record = _attachment ??= _claim is not null && _store.GetVolume(_volume) is { } info ? _attachments.For(_volume, info.ViewNumber) : null;
        if (record?.Refusal(lease) is not { } why) return false;
        Sender.Tell(Failure(new AttachmentFencedException($"volume {_volume}: {why}: its writes are refused")));
        return true;
    }

    /// <summary>True for a repeated attempt of a request this actor already has: its answer goes to the first
    /// attempt, which the gateway still awaits.</summary>
    private bool Repeated(long requestId)
    {
        if (_requests.Admit(requestId)) return false;
        _log.Debug("volume {0}: request {1} repeated by the gateway; already taken", _persistenceId, requestId);
        return true;
    }

    protected override void PostStop()
    {
        // Requests told to this actor from now on are dead letters, which the gateway sends again through the region.
        _writers.Unregister(_volume, Self);
        // The chain is free again (a successor claims it when it recovers as the writer).
        _claim?.Release();
        // So are the ones it took and will not answer now: an ask repeats after its attempt timeout, a direct request
        // has no timer and must be told (the same bytes at the same place again, as a repeat would write them).
        static void Abandon(IActorRef replyTo)
        {
            if (replyTo is LocalReply reply) reply.Lost();
        }
        // (Writes still in the log answer from their completions; a sync volume's WriteStored becomes a dead letter.)
        _quorum.Abandon(Abandon);
        base.PostStop();
    }

    /// <param name="quorum">The actor, when the flush must also wait for a durable majority (a replicated sync volume).</param>
    private async Task FlushAndReply(IActorRef replyTo, long lsn, IActorRef? quorum)
    {
        try
        {
            await _store.FlushAsync().ConfigureAwait(false);
            // A sync volume's flush is done when a majority of the replica set holds everything before it durably.
            if (quorum is not null) quorum.Tell(new FlushedHere(lsn, replyTo));
            else replyTo.Tell(new VolumeAck(lsn));
        }
        catch (Exception e)
        {
            replyTo.Tell(Failure(e));
        }
    }

    private async Task ReadVersionAndReply(ReadVersion r, IActorRef replyTo)
    {
        try
        {
            var buffer = GC.AllocateUninitializedArray<byte>(r.Length);
            await _store.ReadVersionAsync(_volume, r.Version, r.Offset, buffer).ConfigureAwait(false);
            replyTo.Tell(new ReadResult(buffer));
        }
        catch (Exception e)
        {
            replyTo.Tell(Failure(e));
        }
    }

    private async Task VersionSizeAndReply(VersionSize v, IActorRef replyTo)
    {
        try { replyTo.Tell(new VersionSizeResult(await _store.VersionSizeAsync(_volume, v.Version).ConfigureAwait(false))); }
        catch (Exception e) { replyTo.Tell(Failure(e)); }
    }

    private async Task ChangedAndReply(ChangedSince c, IActorRef replyTo)
    {
        try
        {
            var diff = await _store.Streams.ChangedBetweenAsync(_volume, c.Since, c.Until).ConfigureAwait(false);
            replyTo.Tell(ChangedSinceResult.Window(diff, c.Offset, c.Length));
        }
        catch (Exception e)
        {
            replyTo.Tell(Failure(e));
        }
    }

    /// <param name="replicated">The volume has other replicas: a block that fails its checksum here is restored from
    /// one of them (checked against this host's own checksum) and the read is answered from the repaired log.</param>
    private async Task ReadAndReply(Read r, IActorRef replyTo, bool replicated)
    {
        try
        {
            var buffer = GC.AllocateUninitializedArray<byte>(r.Length);
            try
            {
                await _store.ReadAsync(_volume, r.Offset, buffer).ConfigureAwait(false);
            }
            catch (DataCorruptionException) when (replicated)
            {
                if (!await RepairedAsync(r).ConfigureAwait(false)) throw;
                await _store.ReadAsync(_volume, r.Offset, buffer).ConfigureAwait(false);
            }
            replyTo.Tell(new ReadResult(buffer));
        }
        catch (Exception e)
        {
            replyTo.Tell(Failure(e));
        }
    }

    /// <summary>True when the integrity agent restored the read's range from another replica (nothing there is damaged now).</summary>
    private async Task<bool> RepairedAsync(Read r)
    {
        try
        {
            var repair = await _integrity.Ask<RangeRepaired>(new RepairRange(_volume, r.Offset, r.Length, ForRead: true), RepairTimeout).ConfigureAwait(false);
            return !repair.StillDamaged;
        }
        catch (Exception)
        {
            // No answer, or a refusal: the read fails with the damage it met.
            return false;
        }
    }

    /// <summary>A repair is one plan, one round trip to a replica and one append: seconds mean a replica is unreachable.</summary>
    private static readonly TimeSpan RepairTimeout = TimeSpan.FromSeconds(10);

    private VolumeFailure Failure(Exception e) => VolumeFailure.From(_volume, e);
}
