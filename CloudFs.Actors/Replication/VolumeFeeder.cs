// The primary's side of one follower's feed: pushes the volume's new entries to the follower as soon as they are placed
// in this host's log, in parallel with its own write of them (no request per chunk, so a sync write waits for one trip,
// not for the next pull, nor for the primary's write before the replica's), at most a window of chunks unacknowledged,
// and an empty chunk when nothing was appended for a while so the follower knows it is alive.
using Akka.Actor;
using Akka.Event;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

internal sealed class VolumeFeeder : ReceiveActor
{
    private sealed record LoopEnded(string? Error, bool Compacted);

    private readonly LogStore _store;
    private readonly FollowFrom _request;
    private readonly IActorRef _follower;
    private readonly TimeSpan _keepAlive;
    private readonly TimeSpan _idleLimit;
    private readonly SemaphoreSlim _credits;
    private readonly ReplicationCounters _counters;
    private readonly CancellationTokenSource _cts = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public static Props Props(LogStore store, FollowFrom request, IActorRef follower, TimeSpan keepAlive, TimeSpan idleLimit, ReplicationCounters counters) =>
        Akka.Actor.Props.Create(() => new VolumeFeeder(store, request, follower, keepAlive, idleLimit, counters));

    public VolumeFeeder(LogStore store, FollowFrom request, IActorRef follower, TimeSpan keepAlive, TimeSpan idleLimit, ReplicationCounters counters)
    {
        _counters = counters;
        _store = store;
        _request = request;
        _follower = follower;
        _keepAlive = keepAlive;
        _idleLimit = idleLimit;
        _credits = new SemaphoreSlim(Math.Clamp(request.Window, 1, 64));
        Receive<FeedCredit>(c => { if (c.Feed == _request.Feed) _credits.Release(); });
        Receive<FeedStop>(_ => Context.Stop(Self));
        Receive<WantDurable>(w => _follower.Tell(new FeedFlush(_request.Feed, w.Lsn), Self));
        Receive<Terminated>(_ => Context.Stop(Self));
        Receive<LoopEnded>(e =>
        {
            if (e.Error is not null) _follower.Tell(new FeedEnded(_request.Feed, e.Compacted, e.Error));
            Context.Stop(Self);
        });
    }

    protected override void PreStart()
    {
        Context.Watch(_follower);
        var self = Self;
        Task.Run(() => RunAsync(self, _cts.Token)).ContinueWith(t => t.Exception?.GetBaseException() switch
        {
            null => new LoopEnded(null, false),
            OperationCanceledException => new LoopEnded(null, false),
            VersionCompactedException c => new LoopEnded(c.Message, true),
            var e => new LoopEnded(e.Message, false),
        }, TaskContinuationOptions.ExecuteSynchronously).PipeTo(self);
    }

    // Not disposed: the loop may still be between two awaits on its token when the actor stops.
    protected override void PostStop() => _cts.Cancel();

    private async Task RunAsync(IActorRef self, CancellationToken ct)
    {
        var volume = _request.Volume;
        var after = _request.AfterLsn;
        var max = Math.Clamp(_request.MaxBytes, 64 << 10, 2 << 20);
        for (long seq = 0; !ct.IsCancellationRequested; seq++)
        {
            // A follower that stopped taking chunks (gone without a word, or stuck) ends the feed after a while.
            if (!await _credits.WaitAsync(_idleLimit, ct).ConfigureAwait(false))
            {
                _log.Info("feed of volume {0} to {1}: no chunk taken for {2}; ended", volume, _follower.Path, _idleLimit);
                return;
            }
            var newer = await _store.WaitForEntryAsync(volume, after, _keepAlive, ct).ConfigureAwait(false);
            // A host that lost the volume to a view change appends nothing more: its followers must find the new primary.
            if (!newer && !_store.IsWritable(volume)) throw new CloudFsException($"this host is no longer the primary of volume {volume}");
            // Entries are fed as soon as they are placed in this host's log, in parallel with its own write.
            var run = newer ? _store.ReadEntries(volume, after, max, unwritten: true) : null;
            _follower.Tell(new FeedChunk(_request.Feed, seq, run?.LastLsn ?? after, run?.HeadLsn ?? after, run?.Data ?? ReadOnlyMemory<byte>.Empty), self);
            if (run is not null)
            {
                _counters.Fed(run.LastLsn - after, run.Data.Length);
                after = run.LastLsn;
            }
        }
    }
}
