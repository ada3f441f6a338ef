// A volume as a sharded persistent entity: recovers from the engine's head (+ header replay), turns writes into
// pipelined journal events (PersistAsync: no flush per write), and serves reads and maps from the engine's index.
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Persistence;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Events;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

public sealed class VolumeActor : UntypedPersistentActor
{
    public const string JournalId = "cloudfs.persistence.journal";
    public const string SnapshotStoreId = "cloudfs.persistence.snapshot-store";

    private readonly Id160 _volume;
    private readonly string _persistenceId;
    private readonly LogStore _store;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    // One element per event in flight, in journal order; a command's element repeats once per event.
    private readonly Queue<PendingCommand> _awaiting = new();
    private readonly Action<IVolumeEvent> _onStored;
    private readonly int _eventBytes;
    private VolumeState _state;
    // Sync volumes with replicas: a write is acknowledged once a majority of the replica set holds it in its log (this
    // host counts as one once its own write is stored); a FUA write or a flush once a majority holds it durably.
    private SyncQuorum<IActorRef> _quorum = new(1);
    private readonly Action<IActorRef, long> _acknowledge = static (replyTo, lsn) => replyTo.Tell(new VolumeAck(lsn));
    // This host's agent, which passes flush requests on to the volume's feeders.
    private readonly ActorSelection _hostAgent = Context.System.ActorSelection(HostAgent.Path);
    // This host's integrity agent: a read that meets a bad block asks it to restore the block from another replica.
    private readonly ActorSelection _integrity = Context.System.ActorSelection(IntegrityAgent.Path);
    private int _replicaCount = 1;
    private HashSet<Id160> _replicas = new();
    private bool _changingReplicas;
    private bool _recoveredFromHead;
    // The gateway repeats a write that is slow to answer; the repeats of one this actor has taken are ignored.
    private readonly RecentRequests _requests = new(8192);
    private long _replayedHeaders;
    private readonly LocalVolumeWriters _writers = LocalVolumeWriters.Get(Context.System);

    public static Props Props(Id160 volume) => Akka.Actor.Props.Create(() => new VolumeActor(volume));

    public VolumeActor(Id160 volume)
    {
        _volume = volume;
        _persistenceId = volume.ToString();
        _store = CloudFsStorage.Get(Context.System).Store;
        _eventBytes = _store.MaxBlocksPerEntry * LogStore.BlockSize;
        _state = VolumeState.Unknown(volume);
        _onStored = OnStored;
        JournalPluginId = JournalId;
        SnapshotPluginId = SnapshotStoreId;
    }

    public override string PersistenceId => _persistenceId;

    private sealed class PendingCommand(IActorRef replyTo, int events, bool fua)
    {
        public readonly IActorRef ReplyTo = replyTo;
        public readonly bool Fua = fua;
        public int Remaining = events;
        public Exception? Error;
    }

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
                if (_store.GetVolume(_volume) is { } info)
                {
                    _state = VolumeState.FromHead(info) with { Lsn = Math.Max(info.Lsn, _state.Lsn), EventBytes = _eventBytes };
                    _replicaCount = Math.Max(1, info.Replicas.Count);
                    _quorum = new SyncQuorum<IActorRef>(_replicaCount);
                    _replicas = info.Replicas.ToHashSet();
                }
                else
                    _state = _state with { Exists = false };
                if (!_state.Exists) Context.Parent.Tell(new Passivate(PoisonPill.Instance));
                // The writer of its volume takes this node's requests for it directly (ShardedVolumeGateway).
                else if (_state.IsWritable) _writers.Register(_volume, Self);
                break;
        }
    }

    /// <summary>A replica-set change ended; the actor then recovers afresh (its sequence numbers must include the
    /// view-change entry the engine appended).</summary>
    private sealed record ReplicaSetChangeEnded(IActorRef ReplyTo, VolumeInfo? Info, Exception? Error);

    /// <summary>A flush of a sync volume is durable here up to <paramref name="Lsn"/>; it waits for a durable majority.</summary>
    private sealed record FlushedHere(long Lsn, IActorRef ReplyTo);

    /// <summary>Thrown to restart (recover) the actor after its head moved outside the journal.</summary>
    private sealed class HeadMovedException(string message) : Exception(message);

    protected override void OnCommand(object message)
    {
        if (_changingReplicas)
        {
            // Everything waits until the view change is in the log; the restart that follows unstashes it.
            if (message is ReplicaSetChangeEnded ended)
            {
                ended.ReplyTo.Tell(ended.Error is null ? new VolumeAck(ended.Info!.Lsn) : Failure(ended.Error));
                throw new HeadMovedException($"volume {_persistenceId}: the replica set changed (a view change); recovering from the new head");
            }
            Stash.Stash();
            return;
        }
        switch (message)
        {
            case ChangeReplicaSet c:
                if (!_state.IsWritable) { Sender.Tell(Failure(new NotPrimaryException(_volume))); break; }
                _changingReplicas = true;
                var changeReplyTo = Sender;
                // After every write in flight is in the log (the engine refuses a view change beside appends).
                DeferAsync(c, _ => _store.TakeOverAsync(_volume, [], c.Replicas)
                    .ContinueWith(t => new ReplicaSetChangeEnded(changeReplyTo, t.IsCompletedSuccessfully ? t.Result : null,
                        t.IsCompletedSuccessfully ? null : t.Exception?.GetBaseException() ?? new OperationCanceledException()))
                    .PipeTo(Self));
                break;
            case Write w:
                if (TakenOver() || Repeated(w.RequestId)) break;
                Persist(_state.Decide(w.Offset, w.Data, w.Fua), Sender, w.Fua);
                break;
            case WriteZeroes z:
                if (TakenOver() || Repeated(z.RequestId)) break;
                Persist(_state.DecideZeroes(z.Offset, z.Length, z.Fua), Sender, z.Fua);
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
            case Flush:
                if (!_state.Exists) { Sender.Tell(Failure(new VolumeNotFoundException(_volume))); break; }
                // Deferred behind the writes in flight, so a flush also covers writes not yet acknowledged.
                DeferAsync(Sender, replyTo => _ = FlushAndReply(replyTo, _state.Lsn, IsReplicatedSync ? Self : null));
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
            case GetVolumeStatus:
                Sender.Tell(new VolumeStatus(_state.Lsn, _state.Exists, _recoveredFromHead, _replayedHeaders));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Persist(Decision decision, IActorRef replyTo, bool fua)
    {
        if (decision.Error is { } error) { replyTo.Tell(Failure(error)); return; }
        if (decision.Events.Count == 0) { replyTo.Tell(new VolumeAck(_state.Lsn)); return; }
        var pending = new PendingCommand(replyTo, decision.Events.Count, fua);
        for (var i = 0; i < decision.Events.Count; i++) _awaiting.Enqueue(pending);
        // Async persist, one atomic write per event (one engine entry each): later commands keep flowing into the
        // journal while these are written, and the engine group-commits them.
        // (PersistAllAsync would make one multi-event atomic write, which the journal cannot store atomically.)
#pragma warning disable AK1006
        foreach (var e in decision.Events) PersistAsync(e, _onStored);
#pragma warning restore AK1006
    }

    private void OnStored(IVolumeEvent e)
    {
        _state = _state.Apply(e, LastSequenceNr);
        Settle(null);
    }

    private void Settle(Exception? error)
    {
        var pending = _awaiting.Dequeue();
        pending.Error ??= error;
        if (--pending.Remaining > 0) return;
        if (pending.Error is not null) { pending.ReplyTo.Tell(Failure(pending.Error)); return; }
        if (!IsReplicatedSync) { pending.ReplyTo.Tell(new VolumeAck(_state.Lsn)); return; }
        if (pending.Fua) { WaitDurable(pending.ReplyTo, _state.Lsn); return; }
        _quorum.Wait(pending.ReplyTo, _state.Lsn, durable: false);
        _quorum.Release(_acknowledge);
    }

    /// <summary>A FUA write or flush waits for a durable majority: the followers are asked to flush up to it now.</summary>
    private void WaitDurable(IActorRef replyTo, long lsn)
    {
        _quorum.Wait(replyTo, lsn, durable: true);
        _quorum.Release(_acknowledge);
        if (_quorum.Waiting > 0) _hostAgent.Tell(new WantDurable(_volume, lsn));
    }

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
        // So are the ones it took and will not answer now: an ask repeats after its attempt timeout, a direct request
        // has no timer and must be told (the same bytes at the same place again, as a repeat would write them).
        static void Abandon(IActorRef replyTo)
        {
            if (replyTo is LocalReply reply) reply.Lost();
        }
        foreach (var pending in _awaiting)
            if (pending.Remaining > 0) Abandon(pending.ReplyTo);
        _quorum.Abandon(Abandon);
        base.PostStop();
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // A failed device was reported once, at ERROR, by the engine; each write it refuses after that is not news.
        if (cause is DeviceException) _log.Debug("volume {0}: event {1} refused, the log device failed: {2}", _persistenceId, sequenceNr, cause.Message);
        else _log.Warning("volume {0}: event {1} rejected by the journal: {2}", _persistenceId, sequenceNr, cause.Message);
        _state = _state with { Lsn = sequenceNr };
        Settle(cause);
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // The actor stops after this (Akka's rule); every writer in flight hears why, then the next message
        // recovers a fresh actor from the engine's head.
        while (_awaiting.Count > 0)
        {
            var pending = _awaiting.Dequeue();
            if (pending.Remaining <= 0) continue;
            pending.Remaining = 0;
            pending.ReplyTo.Tell(Failure(cause));
        }
        // The base logs an error; a failed device was already reported once, at ERROR, by the engine.
        if (cause.GetBaseException() is DeviceException e)
            _log.Warning("volume {0}: event {1} was not stored, the log device failed; the actor stops ({2})", _persistenceId, sequenceNr, e.Message);
        else
            base.OnPersistFailure(cause, @event, sequenceNr);
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
