// One replica of one volume on this host: asks placement for the primary, fetches its share of the secret, checks
// that its own head is on the primary's chain (a divergent suffix is split off as a branch, never dropped), then
// pulls entry chunks from the primary's agent and applies them to the local log, acknowledging every durable head
// to the primary's VolumeActor (sync volumes count these acknowledgements).
using System.IO.Pipelines;
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

    private readonly Id160 _volume;
    private readonly LogStore _store;
    private readonly IActorRef _placement;
    private readonly IActorRef _volumes;
    private readonly FollowerSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _cts = new();
    private readonly ActorSystem _system = Context.System;
    private Task? _loop;

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
    }

    private void Stopping()
    {
        Receive<LoopEnded>(_ => Context.Stop(Self));
        Receive<Stop>(_ => { });
    }

    protected override void PreStart()
    {
        var self = Self;
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
        var host = _store.HostId;
        var apply = _store.ApplyLiveAsync(pipe.Reader.AsStream(), p => _volumes.Tell(new ReplicaAck(_volume, host, p.Lsn)), stop.Token);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long moved = 0, from = after;
        var caughtUp = false;
        try
        {
            while (!apply.IsCompleted)
            {
                if (!shared && _store.GetVolume(_volume) is not null)
                {
                    await FetchShareAsync(agent, ct).ConfigureAwait(false);
                    shared = true;
                }
                var reply = await agent.Ask<object>(new PullEntries(_volume, after, _settings.ChunkBytes, (int)_settings.PollWait.TotalMilliseconds),
                    _settings.AskTimeout + _settings.PollWait, ct).ConfigureAwait(false);
                if (reply is ControlFailed f) throw new CloudFsException($"the primary refused the pull: {f.Reason}");
                if (reply is not EntryChunk chunk) throw new CloudFsException($"unexpected answer {reply.GetType().Name} to a pull");
                if (chunk.Data.Length > 0)
                {
                    await pipe.Writer.WriteAsync(chunk.Data, ct).ConfigureAwait(false);
                    after = chunk.LastLsn;
                    moved += chunk.Data.Length;
                }
                if (!caughtUp && chunk.LastLsn >= chunk.HeadLsn)
                {
                    // Only the missing suffix moves: report how much that was.
                    caughtUp = true;
                    _log.Info("replica of volume {0}: caught up with the primary: {1} bytes of entries {2}..{3} in {4:0.00} s",
                        _volume, moved, from + 1, after, clock.Elapsed.TotalSeconds);
                }
            }
        }
        finally
        {
            await pipe.Writer.CompleteAsync().ConfigureAwait(false);
            ApplyResult result;
            try { result = await apply.ConfigureAwait(false); }
            catch (OperationCanceledException) { result = new ApplyResult(0, null, null, null); }
            if (result.Error is not null)
                _log.Warning("replica of volume {0}: the primary's stream was refused: {1}", _volume, result.Error);
        }
    }

    /// <summary>
    /// Where pulling starts: the common head with the primary, or, when the primary compacted away the history this
    /// replica needs to chain on (a new replica, or one far behind), the lsn a full resync installed the volume at.
    /// </summary>
    private async Task<long> StartAfterAsync(ActorSelection agent, CancellationToken ct)
    {
        long after;
        try { after = await CommonHeadAsync(agent, ct).ConfigureAwait(false); }
        catch (ResyncNeededException e) { _log.Info("replica of volume {0}: {1}", _volume, e.Message); after = -1; }
        if (after >= 0 && !await Resync.IsNeededAsync(agent, _volume, after, _settings.AskTimeout, ct).ConfigureAwait(false)) return after;
        var lsn = await new Resync(_volume, _store, _settings, _log).RunAsync(agent, ct).ConfigureAwait(false);
        _volumes.Tell(new ReplicaAck(_volume, _store.HostId, lsn));
        return lsn;
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
