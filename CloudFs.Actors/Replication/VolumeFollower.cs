// One replica of one volume on this host: asks placement for the primary, fetches its share of the secret, checks
// that its own head is on the primary's chain (a divergent suffix is split off as a branch, never dropped), then
// subscribes to the primary's feed of entry chunks (pushed as they are appended, a window of chunks in flight) and
// applies them to the local log, acknowledging what it holds (written, and durable) to the primary's VolumeActor (sync
// volumes count these acknowledgements).
using System.IO.Pipelines;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public sealed class VolumeFollower : ReceiveActor
{
    /// <summary>Stops the follower once its pull loop and apply have ended (nothing is applied after it stopped).</summary>
    public sealed record Stop
    {
        public static readonly Stop Instance = new();
    }

    private sealed record LoopEnded(string Reason);

    /// <summary>Sends the volume's actor on the primary what this host now holds (one message for many entries).</summary>
    private sealed record SendAck
    {
        public static readonly SendAck Instance = new();
    }

    /// <summary>Chunks the primary may push before the follower took the first in (each at most the chunk size).</summary>
    private const int FeedWindow = 4;

    /// <summary>
    /// Entries are written as they arrive and flushed when the primary asks (a FUA write or FLUSH waits for a durable
    /// majority), or at the latest this long after they arrived (what bounds the compaction floor's lag), not at every
    /// pause of the feed.
    /// </summary>
    private static readonly TimeSpan FlushDelay = TimeSpan.FromSeconds(1);

    private readonly Id160 _volume;
    private readonly LogStore _store;
    private readonly IActorRef _placement;
    private readonly IActorRef _volumes;
    private readonly FollowerSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _cts = new();
    private readonly ActorSystem _system = Context.System;
    private Task? _loop;
    // This host's written and durable heads on the primary's chain, set from the log's completion path. An
    // acknowledgement goes out when the last entry of a chunk is written or when more is durable, not per entry (each
    // one is a message through sharding to the primary), and one per turn of the actor however many are due.
    private readonly object _ackGate = new();
    private long _written, _durable;
    private readonly Queue<long> _chunkEnds = new();   // the last lsn of each chunk handed to the apply and not yet written
    private int _ackPending;
    // The flush pacing of the subscription in progress (the primary's flush requests go to it).
    private volatile LiveFlushes? _flushes;
    // What the primary's feeders push, in arrival order; the loop drops what belongs to an earlier subscription.
    private readonly Channel<(object Message, IActorRef Sender)> _inbox = Channel.CreateUnbounded<(object, IActorRef)>(new UnboundedChannelOptions { SingleReader = true });
    private IActorRef _self = ActorRefs.Nobody;

    public static Props Props(Id160 volume, LogStore store, IActorRef placement, IActorRef volumes, FollowerSettings settings) =>
        Akka.Actor.Props.Create(() => new VolumeFollower(volume, store, placement, volumes, settings));

    public VolumeFollower(Id160 volume, LogStore store, IActorRef placement, IActorRef volumes, FollowerSettings settings)
    {
        _volume = volume;
        _store = store;
        _placement = placement;
        _volumes = volumes;
        _settings = settings;
        Receive<Stop>(_ =>
        {
            _cts.Cancel();
            var loop = _loop ?? Task.CompletedTask;
            loop.ContinueWith(_ => new LoopEnded("stopped"), TaskContinuationOptions.ExecuteSynchronously).PipeTo(Self);
            Become(Stopping);
        });
        Receive<LoopEnded>(e =>
        {
            Context.Parent.Tell(new FollowerStopped(_volume, e.Reason));
            Context.Stop(Self);
        });
        Receive<FeedChunk>(c => _inbox.Writer.TryWrite((c, Sender)));
        Receive<FeedEnded>(e => _inbox.Writer.TryWrite((e, Sender)));
        Receive<SendAck>(_ => Acknowledge());
        Receive<FeedFlush>(f => _flushes?.Request(f.Lsn));
    }

    private void Acknowledge()
    {
        // Cleared before reading: a completion after this line schedules another acknowledgement.
        Volatile.Write(ref _ackPending, 0);
        long written, durable;
        lock (_ackGate) { written = _written; durable = _durable; }
        _volumes.Tell(new ReplicaAck(_volume, _store.HostId, written, durable));
        _settings.Counters.Acked();
    }

    private void Held(long written, long durable)
    {
        bool due;
        lock (_ackGate)
        {
            var endOfChunk = false;
            if (written > _written)
            {
                _written = written;
                while (_chunkEnds.Count > 0 && _chunkEnds.Peek() <= written)
                {
                    _chunkEnds.Dequeue();
                    endOfChunk = true;
                }
            }
            var moreDurable = durable > _durable;
            if (moreDurable) _durable = durable;
            due = endOfChunk || moreDurable || (_chunkEnds.Count == 0 && written == _written);
        }
        if (due && Interlocked.Exchange(ref _ackPending, 1) == 0) _self.Tell(SendAck.Instance);
    }

    /// <summary>A subscription starts from <paramref name="after"/>: what this host holds is measured from there.</summary>
    private void HeldFrom(long after)
    {
        lock (_ackGate)
        {
            _written = _durable = after;
            _chunkEnds.Clear();
        }
    }

    /// <summary>Before a chunk goes to the apply: its last entry's write is what acknowledges it.</summary>
    private void ChunkSent(long lastLsn)
    {
        lock (_ackGate) _chunkEnds.Enqueue(lastLsn);
    }

    private void Stopping()
    {
        Receive<LoopEnded>(_ => Context.Stop(Self));
        Receive<Stop>(_ => { });
        Receive<FeedChunk>(_ => { });
        Receive<FeedEnded>(_ => { });
        Receive<FeedFlush>(_ => { });
        Receive<SendAck>(_ => Acknowledge());
    }

    protected override void PreStart()
    {
        var self = _self = Self;
        _loop = Task.Run(() => RunAsync(_cts.Token));
        _loop.ContinueWith(t => new LoopEnded(t.IsFaulted ? t.Exception!.GetBaseException().Message : "done"),
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(self);
    }

    protected override void PostStop() => _cts.Cancel();

    private async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var primary = await _placement.Ask<PrimaryIs>(new WhereIsPrimary(_volume.ToString()), _settings.AskTimeout, ct).ConfigureAwait(false);
                if (primary.HostId is null || primary.Address is null) { await Task.Delay(_settings.RetryDelay, ct).ConfigureAwait(false); continue; }
                if (primary.HostId == _store.HostId.ToString()) return;
                var agent = _system.ActorSelection(primary.Address + HostAgent.Path);
                await FollowAsync(agent, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _log.Info("replica of volume {0}: {1}; retrying", _volume, e.GetBaseException().Message);
            }
            await Task.Delay(_settings.RetryDelay, ct).ConfigureAwait(false);
        }
    }

    private async Task FollowAsync(ActorSelection agent, CancellationToken ct)
    {
        var after = await StartAfterAsync(agent, ct).ConfigureAwait(false);
        // The share of the current view's secret comes once this host holds the volume (a new replica first
        // applies the creation entry).
        var shared = false;

        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // What this host holds is measured on the primary's chain from the common head on (a split may have
        // rewound it below what it acknowledged before).
        HeldFrom(after);
        var flushes = _flushes = new LiveFlushes(FlushDelay);
        var apply = _store.ApplyLiveAsync(pipe.Reader.AsStream(), p => Held(p.Lsn, p.Lsn), p => Held(p.Lsn, 0), flushes, stop.Token);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long moved = 0, from = after;
        var caughtUp = false;
        var feed = Random.Shared.NextInt64();
        agent.Tell(new FollowFrom(_volume, after, feed, FeedWindow, _settings.ChunkBytes), _self);
        long seq = 0;
        try
        {
            while (!apply.IsCompleted)
            {
                if (!shared && _store.GetVolume(_volume) is not null)
                {
                    await FetchShareAsync(agent, ct).ConfigureAwait(false);
                    shared = true;
                }
                var (message, feeder) = await NextFromFeedAsync(ct).ConfigureAwait(false);
                switch (message)
                {
                    case FeedEnded e when e.Feed == feed:
                        throw new CloudFsException(e.Compacted
                            ? $"the primary no longer holds the entries after lsn {after} (compacted away); this replica cannot chain on and needs a full resync: {e.Reason}"
                            : $"the primary ended the feed: {e.Reason}");
                    case FeedChunk c when c.Feed == feed:
                        if (c.Seq != seq) throw new CloudFsException($"the primary's feed skipped from chunk {seq} to {c.Seq}");
                        seq++;
                        if (c.Data.Length > 0)
                        {
                            ChunkSent(c.LastLsn);
                            await pipe.Writer.WriteAsync(c.Data, ct).ConfigureAwait(false);
                            _settings.Counters.Received();
                            after = c.LastLsn;
                            moved += c.Data.Length;
                        }
                        // Taken in (the pipe bounds what waits for the apply): the feeder may send one more.
                        feeder.Tell(new FeedCredit(feed, c.Seq), _self);
                        if (!caughtUp && c.LastLsn >= c.HeadLsn)
                        {
                            // Only the missing suffix moves: report how much that was.
                            caughtUp = true;
                            _log.Info("replica of volume {0}: caught up with the primary: {1} bytes of entries {2}..{3} in {4:0.00} s",
                                _volume, moved, from + 1, after, clock.Elapsed.TotalSeconds);
                        }
                        break;
                }
            }
        }
        finally
        {
            agent.Tell(new FeedStop(feed), _self);
            await pipe.Writer.CompleteAsync().ConfigureAwait(false);
            ApplyResult result;
            try { result = await apply.ConfigureAwait(false); }
            catch (OperationCanceledException) { result = new ApplyResult(0, null, null, null); }
            if (result.Error is not null)
                _log.Warning("replica of volume {0}: the primary's stream was refused: {1}", _volume, result.Error);
        }
    }

    /// <summary>
    /// Where the feed starts: the common head with the primary, or, when the primary compacted away the history this
    /// replica needs to chain on (a new replica, or one far behind), the lsn a full resync installed the volume at.
    /// </summary>
    private async Task<long> StartAfterAsync(ActorSelection agent, CancellationToken ct)
    {
        long after;
        try { after = await CommonHeadAsync(agent, ct).ConfigureAwait(false); }
        catch (ResyncNeededException e) { _log.Info("replica of volume {0}: {1}", _volume, e.Message); after = -1; }
        if (after >= 0 && !await Resync.IsNeededAsync(agent, _volume, after, _settings.AskTimeout, ct).ConfigureAwait(false)) return after;
        var lsn = await new Resync(_volume, _store, _settings, _log).RunAsync(agent, ct).ConfigureAwait(false);
        // Acknowledged at once: the primary's stream floor may rise to the installed lsn.
        Held(lsn, lsn);
        return lsn;
    }

    /// <summary>The next message a feeder pushed; the primary sends at least an empty chunk every poll-wait, so a
    /// silence much longer than that means it is gone or cut off.</summary>
    private async Task<(object Message, IActorRef Sender)> NextFromFeedAsync(CancellationToken ct)
    {
        var silence = _settings.AskTimeout + _settings.PollWait;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(silence);
        try { return await _inbox.Reader.ReadAsync(wait.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new CloudFsException($"no word from the primary's feed for {silence.TotalSeconds:0} s");
        }
    }

    /// <summary>The lsn to pull after: this host's head when the primary holds the same version there; otherwise the
    /// divergent suffix is split off as a branch and the head is rewound to the last common lsn.</summary>
    private async Task<long> CommonHeadAsync(ActorSelection agent, CancellationToken ct)
    {
        if (_store.GetVolume(_volume) is not { } local) return 0;
        var lsn = local.Lsn;
        if (await SameAtAsync(agent, lsn, ct).ConfigureAwait(false)) return lsn;
        // Binary search for the last lsn both chains share (lsn 1, the creation entry, always is).
        long lo = 1, hi = lsn;
        while (hi - lo > 1)
        {
            var mid = lo + (hi - lo) / 2;
            if (await SameAtAsync(agent, mid, ct).ConfigureAwait(false)) lo = mid; else hi = mid;
        }
        var branch = await _store.SplitForkAsync(_volume, lo, ct).ConfigureAwait(false);
        _log.Warning("volume {0}: this host's entries {1}..{2} are not on the primary's chain; they are kept as branch {3}",
            _volume, lo + 1, lsn, branch.BaseId);
        return lo;
    }

    private async Task<bool> SameAtAsync(ActorSelection agent, long lsn, CancellationToken ct)
    {
        var answer = await agent.Ask<VersionAnswer>(new GetVersionAt(_volume.ToString(), lsn), _settings.AskTimeout, ct).ConfigureAwait(false);
        if (answer.Version is not null) return answer.Version == _store.VersionAt(_volume, lsn).ToString();
        // Beyond the primary's head: this host's entry there is not on its chain. At or below it: compacted away,
        // which says nothing about a fork; never split on that.
        if (lsn > answer.HeadLsn) return false;
        throw new ResyncNeededException(lsn);
    }

    private async Task FetchShareAsync(ActorSelection agent, CancellationToken ct)
    {
        var reply = await agent.Ask<object>(new RequestShare(_volume.ToString(), _store.HostId.ToString(), _store.HostPublicKey), _settings.AskTimeout, ct).ConfigureAwait(false);
        switch (reply)
        {
            case ShareDto share:
                _store.StoreShare(share.ToShare());
                _log.Info("replica of volume {0}: holds its share of the secret of view {1}", _volume, share.View);
                break;
            case ControlFailed f:
                _log.Warning("replica of volume {0}: no share of the secret from the primary: {1}", _volume, f.Reason);
                break;
        }
    }
}
