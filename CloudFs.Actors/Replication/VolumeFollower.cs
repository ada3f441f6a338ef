// One replica of one volume on this host: asks placement for the primary, fetches its share of the secret, checks
// that its own head is on the primary's chain (a divergent suffix is split off as a branch, never dropped), then
// connects to the primary's feed port (FeedWire) and applies the chunks of entries pushed there (as they are appended)
// to the local log, acknowledging on the same connection what it holds, written and durable (the primary's feeder hands
// the acknowledgements to the volume's actor; sync volumes count them). With the node's certificates the connection is
// mutual TLS, and the feed port must prove to be the primary's host (FeedConnection).
using System.Buffers.Binary;
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

    /// <summary>
    /// Entries are written as they arrive and flushed when the primary asks (a FUA write or FLUSH waits for a durable
    /// majority), or at the latest this long after they arrived (what bounds the compaction floor's lag), not at every
    /// pause of the feed.
    /// </summary>
    private static readonly TimeSpan FlushDelay = TimeSpan.FromSeconds(1);

    private readonly Id160 _volume;
    private readonly LogStore _store;
    private readonly IActorRef _placement;
    private readonly FollowerSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _cts = new();
    private readonly ActorSystem _system = Context.System;
    private Task? _loop;
    // What this host holds of the primary's chain on the current connection, and the catch-up's progress: an
    // acknowledgement goes out when it is due, one at a time however many are (the sender takes the latest heads).
    private readonly FollowerProgress _progress;
    private readonly Channel<bool> _ackDue = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
        { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    public static Props Props(Id160 volume, LogStore store, IActorRef placement, FollowerSettings settings) =>
        Akka.Actor.Props.Create(() => new VolumeFollower(volume, store, placement, settings));

    public VolumeFollower(Id160 volume, LogStore store, IActorRef placement, FollowerSettings settings)
    {
        _volume = volume;
        _store = store;
        _placement = placement;
        _settings = settings;
        _progress = new FollowerProgress((done, total) => Report(ReplicaSync.CatchingUp, done, total), Following);
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

    /// <summary>Sends what this host holds whenever it is due, one acknowledgement at a time, until the feed ends.</summary>
    private async Task SendAcksAsync(FeedConnection feed, CancellationToken ct)
    {
        var frame = new byte[FeedWire.AckSize];
        while (await _ackDue.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            // Taken before reading the heads: a completion after this line makes another acknowledgement due.
            _ackDue.Reader.TryRead(out _);
            var (written, durable) = _progress.Heads;
            FeedWire.EncodeLsnPair(frame, FeedWire.Ack, written, durable);
            await feed.SendAsync(frame, ct).ConfigureAwait(false);
            _settings.Counters.Acked();
        }
    }

    private void Held(long written, long durable)
    {
        if (_progress.Held(written, durable)) _ackDue.Writer.TryWrite(true);
    }

    private void Following(FollowerProgress.CaughtUp done)
    {
        Report(ReplicaSync.Following);
        _log.Info("replica of volume {0}: caught up with the primary: {1} bytes of entries {2}..{3} in {4:0.00} s",
            _volume, done.Bytes, done.First, done.Last, done.Took.TotalSeconds);
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

    protected override void PostStop()
    {
        _cts.Cancel();
        _settings.Syncs.Remove(_volume);
    }

    private void Report(string state, long done = 0, long total = 0, string? reason = null) =>
        _settings.Syncs.Set(_volume, new ReplicaSync(_volume.ToString(), state, done, total, reason));

    private async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (_settings.Syncs.Of(_volume) is not { State: ReplicaSync.Retrying }) Report(ReplicaSync.Connecting);
                var primary = await _placement.Ask<PrimaryIs>(new WhereIsPrimary(_volume.ToString()), _settings.AskTimeout, ct).ConfigureAwait(false);
                if (primary.HostId is null || primary.Address is null)
                {
                    Report(ReplicaSync.Retrying, reason: "no primary is known");
                    await Task.Delay(_settings.RetryDelay, ct).ConfigureAwait(false);
                    continue;
                }
                if (primary.HostId == _store.HostId.ToString()) return;
                var agent = _system.ActorSelection(primary.Address + HostAgent.Path);
                await FollowAsync(agent, Id160.Parse(primary.HostId), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Report(ReplicaSync.Retrying, reason: e.GetBaseException().Message);
                _log.Info("replica of volume {0}: {1}; retrying", _volume, e.GetBaseException().Message);
            }
            await Task.Delay(_settings.RetryDelay, ct).ConfigureAwait(false);
        }
    }

    private async Task FollowAsync(ActorSelection agent, Id160 primary, CancellationToken ct)
    {
        var after = await StartAfterAsync(agent, ct).ConfigureAwait(false);
        // The share of the current view's secret comes once this host holds the volume (a new replica first
        // applies the creation entry).
        var shared = false;

        var endpoint = await agent.Ask<FeedEndpoint>(WhereIsFeed.Instance, _settings.AskTimeout, ct).ConfigureAwait(false);
        FeedConnection connection;
        using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            connect.CancelAfter(_settings.AskTimeout);
            try { connection = await FeedConnection.ConnectAsync(endpoint.Host, endpoint.Port, primary, _settings.Tls, connect.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new CloudFsException($"no connection to the primary's feed port {endpoint.Host}:{endpoint.Port} within {_settings.AskTimeout.TotalSeconds:0} s");
            }
        }
        using var _ = connection;
        var feed = connection.Stream;
        await connection.SendAsync(FeedWire.EncodeHello(new FeedWire.Hello(_volume, _store.HostId, after, _settings.ChunkBytes)), ct).ConfigureAwait(false);

        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // What this host holds is measured on the primary's chain from the common head on (a split may have
        // rewound it below what it acknowledged before).
        _progress.Start(after);
        var flushes = new LiveFlushes(FlushDelay);
        var apply = _store.Streams.ApplyLiveAsync(pipe.Reader.AsStream(), p => Held(p.Lsn, p.Lsn), p => Held(p.Lsn, 0), flushes, stop.Token);
        var acks = SendAcksAsync(connection, stop.Token);
        // The primary sends at least an empty chunk every poll-wait: a silence much longer than that means it is gone
        // or cut off.
        var silence = _settings.AskTimeout + _settings.PollWait;
        using var quiet = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var scratch = new byte[FeedWire.FrameHeaderSize + FeedWire.ChunkPrefixSize];
        try
        {
            while (!apply.IsCompleted && !acks.IsCompleted)
            {
                if (!shared && _store.GetVolume(_volume) is not null)
                {
                    await FetchShareAsync(agent, ct).ConfigureAwait(false);
                    shared = true;
                }
                quiet.CancelAfter(silence);
                try
                {
                    var (kind, length) = await FeedWire.ReadFrameHeaderAsync(feed, scratch, quiet.Token).ConfigureAwait(false);
                    switch (kind)
                    {
                        case FeedWire.Chunk when length >= FeedWire.ChunkPrefixSize:
                            await feed.ReadExactlyAsync(scratch.AsMemory(0, FeedWire.ChunkPrefixSize), quiet.Token).ConfigureAwait(false);
                            var last = BinaryPrimitives.ReadInt64LittleEndian(scratch);
                            var head = BinaryPrimitives.ReadInt64LittleEndian(scratch.AsSpan(8));
                            var bytes = length - FeedWire.ChunkPrefixSize;
                            if (bytes > 0)
                            {
                                _progress.ChunkSent(last, bytes);
                                await CopyToPipeAsync(feed, pipe.Writer, bytes, quiet.Token).ConfigureAwait(false);
                                if ((await pipe.Writer.FlushAsync(ct).ConfigureAwait(false)).IsCompleted) break;
                                _settings.Counters.Received();
                                after = last;
                            }
                            // A keepalive is answered, so the primary knows this replica is alive.
                            else _ackDue.Writer.TryWrite(true);
                            // Catching up until everything missing is sent and written, then Following.
                            _progress.Received(last, head);
                            break;
                        case FeedWire.Flush when length == 8:
                            await feed.ReadExactlyAsync(scratch.AsMemory(0, 8), quiet.Token).ConfigureAwait(false);
                            flushes.Request(BinaryPrimitives.ReadInt64LittleEndian(scratch));
                            break;
                        case FeedWire.End when length >= 1:
                            var end = new byte[length];
                            await feed.ReadExactlyAsync(end, quiet.Token).ConfigureAwait(false);
                            var reason = System.Text.Encoding.UTF8.GetString(end, 1, length - 1);
                            throw new CloudFsException(end[0] == 1
                                ? $"the primary no longer holds the entries after lsn {after} (compacted away); this replica cannot chain on and needs a full resync: {reason}"
                                : $"the primary ended the feed: {reason}");
                        default:
                            throw new FeedProtocolException($"malformed feed frame from the primary (kind {kind}, {length} bytes)");
                    }
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new CloudFsException($"no word from the primary's feed for {silence.TotalSeconds:0} s");
                }
                catch (EndOfStreamException)
                {
                    throw new CloudFsException("the primary closed the feed");
                }
            }
        }
        finally
        {
            stop.Cancel();
            connection.Dispose();
            await pipe.Writer.CompleteAsync().ConfigureAwait(false);
            ApplyResult result;
            try { result = await apply.ConfigureAwait(false); }
            catch (OperationCanceledException) { result = new ApplyResult(0, null, null, null); }
            if (result.Error is not null)
                _log.Warning("replica of volume {0}: the primary's stream was refused: {1}", _volume, result.Error);
            try { await acks.ConfigureAwait(false); }
            catch (Exception) { }   // the connection is gone; the next one acknowledges afresh
        }
    }

    /// <summary>Moves <paramref name="bytes"/> of entries from the connection straight into the apply's pipe.</summary>
    private static async Task CopyToPipeAsync(Stream feed, PipeWriter pipe, int bytes, CancellationToken ct)
    {
        while (bytes > 0)
        {
            var memory = pipe.GetMemory(Math.Min(bytes, 64 << 10));
            var n = await feed.ReadAsync(memory[..Math.Min(bytes, memory.Length)], ct).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException();
            pipe.Advance(n);
            bytes -= n;
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
        // A copy of unknown standing (the primary compacted the history needed to compare the chains) may hold a
        // suffix the primary never had (an async write acknowledged by an old primary): unless the primary holds this
        // head, the copy is kept as a branch before the resync replaces it, never dropped.
        var kept = false;
        if (after < 0 && _store.GetVolume(_volume) is { } local && local.Lsn > 0)
        {
            var held = await agent.Ask<VersionHeld>(new HoldsVersion(_volume.ToString(), local.Lsn, local.CurrentVersion.ToString()), _settings.AskTimeout, ct).ConfigureAwait(false);
            if (!held.Held)
            {
                var branch = await _store.KeepAsBranchAsync(_volume, ct).ConfigureAwait(false);
                _log.Warning("volume {0}: this host's copy at lsn {1} is not known to be on the primary's chain, and the history to compare them is compacted away; it is kept as branch {2} before a full resync",
                    _volume, local.Lsn, branch.BaseId);
                kept = true;
            }
        }
        // A copy kept as a branch is replaced even when it is ahead of the primary's head.
        Report(ReplicaSync.Resyncing);
        var lsn = await new Resync(_volume, _store, _settings, _log).RunAsync(agent, kept, ct,
            done => Report(ReplicaSync.Resyncing, done)).ConfigureAwait(false);
        // Acknowledged at once: the primary's stream floor may rise to the installed lsn.
        Held(lsn, lsn);
        return lsn;
    }

    /// <summary>The lsn to pull after: this host's head when the primary holds the same version there; otherwise the
    /// divergent suffix is split off as a branch and the head is rewound to the last common lsn.</summary>
    private async Task<long> CommonHeadAsync(ActorSelection agent, CancellationToken ct)
    {
        if (_store.GetVolume(_volume) is not { } local)
        {
            // A new replica of a branch: its branch entry reads through this host's own copy of the version it was
            // made from. Without that version (another volume's, or history compacted here), the branch comes whole.
            var source = (await agent.Ask<BranchSource>(new GetBranchSource(_volume.ToString()), _settings.AskTimeout, ct).ConfigureAwait(false)).Version;
            if (source is not null && !_store.CanBranchFrom(Id160.Parse(source)))
                throw new ResyncNeededException(0, $"the volume is a branch of version {source}, which this host does not hold whole; it is copied whole");
            return 0;
        }
        var lsn = local.Lsn;
        if (await SameAtAsync(agent, lsn, ct).ConfigureAwait(false)) return lsn;
        // Binary search for the last lsn both chains share (lsn 1, the creation entry, always is).
        long lo = 1, hi = lsn;
        while (hi - lo > 1)
        {
            var mid = lo + (hi - lo) / 2;
            if (await SameAtAsync(agent, mid, ct).ConfigureAwait(false)) lo = mid; else hi = mid;
        }
        VolumeInfo branch;
        try { branch = await _store.SplitForkAsync(_volume, lo, ct).ConfigureAwait(false); }
        catch (VersionCompactedException e)
        {
            // This host's own history up to lo is compacted: the suffix cannot be split off at lo, only kept whole.
            throw new ResyncNeededException(lo, $"this host's entries after lsn {lo} are not on the primary's chain, and its own history up to there is compacted away ({e.Message}), so they cannot be split off; the copy needs a full resync");
        }
        _log.Warning("volume {0}: this host's entries {1}..{2} are not on the primary's chain; they are kept as branch {3}",
            _volume, lo + 1, lsn, branch.BaseId);
        return lo;
    }

    private async Task<bool> SameAtAsync(ActorSelection agent, long lsn, CancellationToken ct)
    {
        var answer = await agent.Ask<VersionAnswer>(new GetVersionAt(_volume.ToString(), lsn), _settings.AskTimeout, ct).ConfigureAwait(false);
        if (answer.Version is not null)
        {
            try { return answer.Version == _store.VersionAt(_volume, lsn).ToString(); }
            catch (VersionCompactedException e)
            {
                // Below this host's head (its head's version is always known): its own history there is compacted.
                throw new ResyncNeededException(lsn, $"this host's copy is not on the primary's chain at its head, and its own history at lsn {lsn} is compacted away ({e.Message}), so the chains cannot be compared there; the copy needs a full resync");
            }
        }
        // Beyond the primary's head: this host's entry there is not on its chain. At or below it: compacted away,
        // which says nothing about a fork; never split on that.
        if (lsn > answer.HeadLsn) return false;
        throw new ResyncNeededException(lsn);
    }

    private async Task FetchShareAsync(ActorSelection agent, CancellationToken ct)
    {
        var reply = await agent.Ask<object>(new RequestShare(_volume.ToString(), _store.HostId.ToString()), _settings.AskTimeout, ct).ConfigureAwait(false);
        switch (reply)
        {
            case ShareDto share:
                _store.Ownership.StoreShare(share.ToShare());
                _log.Info("replica of volume {0}: holds its share of the secret of view {1}", _volume, share.View);
                break;
            case ControlFailed f:
                _log.Warning("replica of volume {0}: no share of the secret from the primary: {1}", _volume, f.Reason);
                break;
        }
    }
}
