// Akka.Persistence journal over the engine: persistence id = volume id (40 hex), sequence number = lsn.
// Each persisted volume event is one engine entry; replay yields entry headers only, never volume data.
// VolumeActor recovers through it but appends its writes to the engine itself (no relay per write).
using System.Collections.Concurrent;
using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using CloudFs.Actors.Volumes.Events;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Persistence;

public sealed class LogJournal : AsyncWriteJournal, IWithUnboundedStash
{
    private readonly CancellationTokenSource _cts = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly int _replayPageSize;
    // The last write task of each persistence id: ReadHighestSequenceNr waits for it.
    private readonly ConcurrentDictionary<string, Task> _inFlight = new(StringComparer.Ordinal);
    // The highest sequence number ever reported per persistence id: it never goes down.
    private readonly ConcurrentDictionary<string, long> _highest = new(StringComparer.Ordinal);
    // Sequence numbers rejected since the writer's last recovery, per persistence id (see Skip).
    private readonly ConcurrentDictionary<string, long> _skipped = new(StringComparer.Ordinal);
    private LogStore _store = null!;
    private DeletedMarkers _deleted = null!;

    public LogJournal(Akka.Configuration.Config config)
    {
        _replayPageSize = Math.Max(1, config.GetInt("replay-page-size", 4096));
    }

    public IStash Stash { get; set; } = null!;

    private sealed record Initialized(LogStore Store, DeletedMarkers Deleted);
    private sealed record InitializationFailed(Exception Cause);

    protected override void PreStart()
    {
        base.PreStart();
        var storage = CloudFsStorage.Get(Context.System);
        storage.StoreAsync.WaitAsync(_cts.Token).PipeTo(Self,
            success: store => new Initialized(store, storage.Deleted),
            failure: e => new InitializationFailed(e));
        // Everything that arrives before the store is open waits in the stash.
        Context.BecomeStacked(WaitingForStore);
    }

    private bool WaitingForStore(object message)
    {
        switch (message)
        {
            case Initialized init:
                _store = init.Store;
                _deleted = init.Deleted;
                Context.UnbecomeStacked();
                Stash.UnstashAll();
                return true;
            case InitializationFailed failed:
                _log.Error(failed.Cause, "the CloudFS journal cannot start: the log store did not open");
                throw new DeviceException("the CloudFS journal cannot start: the log store did not open", failed.Cause);
            default:
                Stash.Stash();
                return true;
        }
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _cts.Dispose();
        base.PostStop();
    }

    protected override Task<IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        // Every append is issued here, synchronously and in order, so the engine sees lsns in sequence;
        // only then do we wait for them together (the engine group-commits what is in flight).
        var writes = messages as IReadOnlyList<AtomicWrite> ?? messages.ToList();
        var appends = new List<Task>(writes.Count);
        Exception?[]? rejections = null;
        for (var i = 0; i < writes.Count; i++)
        {
            var write = writes[i];
            var (task, rejection) = Append(write);
            if (rejection is not null) (rejections ??= new Exception?[writes.Count])[i] = rejection;
            if (task is null) continue;
            appends.Add(task);
            _inFlight[write.PersistenceId] = task;
        }
        return Complete(appends, rejections, writes);
    }

    private async Task<IImmutableList<Exception?>> Complete(List<Task> appends, Exception?[]? rejections, IReadOnlyList<AtomicWrite> writes)
    {
        try
        {
            // A storage failure (I/O, log full) faults the whole batch: the writers are told their writes failed.
            await Task.WhenAll(appends).ConfigureAwait(false);
        }
        finally
        {
            foreach (var write in writes)
                if (_inFlight.TryGetValue(write.PersistenceId, out var last) && last.IsCompleted)
                    _inFlight.TryRemove(new KeyValuePair<string, Task>(write.PersistenceId, last));
        }
        return rejections is null ? null! : rejections.ToImmutableList();
    }

    /// <summary>One AtomicWrite → one engine entry, or a rejection (returned, never thrown).</summary>
    private (Task? Append, Exception? Rejection) Append(AtomicWrite write)
    {
        if (!Id160.TryParse(write.PersistenceId, out var volume))
            return (null, new ArgumentException($"persistence id '{write.PersistenceId}' is not a volume id (40 hex characters)"));
        var events = (IImmutableList<IPersistentRepresentation>)write.Payload;
        if (events.Count != 1)
            return (null, Skip(write.PersistenceId, events.Count,
                new NotSupportedException($"the CloudFS journal stores one event per atomic write, got {events.Count}")));
        var persistent = events[0];
        var lsn = persistent.SequenceNr - _skipped.GetValueOrDefault(write.PersistenceId);
        var token = _cts.Token;
        try
        {
            return persistent.Payload switch
            {
                DataWritten e => (_store.AppendDataAsync(volume, lsn, e.Offset, e.Data, e.Durable, token).AsTask(), null),
                ZeroesWritten e => (_store.AppendZeroAsync(volume, lsn, e.Offset, e.Length, e.Durable, token).AsTask(), null),
                var other => (null, Skip(write.PersistenceId, 1, new NotSupportedException(
                    $"the CloudFS journal stores only volume data and zero events, not {other?.GetType().FullName ?? "null"}"))),
            };
        }
        catch (EntryRejectedException e)
        {
            // The volume's head moved under the writer (entries appended by someone else): a storage failure, so the
            // writer stops and its next incarnation recovers from the real head.
            return (Task.FromException(e), null);
        }
        catch (CloudFsException e)
        {
            // The engine refused the entry before taking an lsn (range, ownership, unknown volume): nothing stored.
            return (null, Skip(write.PersistenceId, 1, e));
        }
    }

    // A rejected event used a sequence number but no lsn: later events of the same writer map to lsn = seqNr - skipped,
    // so the writer goes on after OnPersistRejected. Its next recovery reads the head again and starts from lsn.
    private Exception Skip(string persistenceId, int count, Exception rejection)
    {
        _skipped.AddOrUpdate(persistenceId, count, (_, old) => old + count);
        return rejection;
    }

    public override async Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken)
    {
        if (_inFlight.TryGetValue(persistenceId, out var pending))
        {
            try { await pending.ConfigureAwait(false); }
            catch { /* the writer was told; the head below is the truth */ }
        }
        // A recovering writer restarts its numbering at the head: stored events only.
        _skipped.TryRemove(persistenceId, out _);
        var head = Id160.TryParse(persistenceId, out var volume) ? _store.GetVolume(volume)?.Lsn ?? 0 : 0;
        return Raise(persistenceId, head);
    }

    private long Raise(string persistenceId, long value) =>
        _highest.AddOrUpdate(persistenceId, value, (_, old) => Math.Max(old, value));

    public override Task ReplayMessagesAsync(IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max,
        Action<IPersistentRepresentation> recoveryCallback)
    {
        if (!Id160.TryParse(persistenceId, out var volume) || max <= 0) return Task.CompletedTask;
        var from = Math.Max(fromSequenceNr, _deleted.Get(persistenceId) + 1);
        var left = max;
        while (from <= toSequenceNr && left > 0)
        {
            IReadOnlyList<EntryHeaderInfo> page;
            try
            {
                page = _store.ReadHeaders(volume, from, toSequenceNr, Math.Min(left, _replayPageSize));
            }
            catch (VolumeNotFoundException)
            {
                return Task.CompletedTask;
            }
            if (page.Count == 0) break;
            foreach (var header in page)
            {
                recoveryCallback(new Persistent(new EntryReplayed(header), header.Lsn, persistenceId, manifest: "",
                    isDeleted: false, sender: ActorRefs.NoSender, writerGuid: ""));
            }
            left -= page.Count;
            from = page[^1].Lsn + 1;
        }
        return Task.CompletedTask;
    }

    protected override Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken)
    {
        if (!Id160.TryParse(persistenceId, out var volume))
            return Task.FromException(new ArgumentException($"persistence id '{persistenceId}' is not a volume id (40 hex characters)"));
        // Deleting past the head would hide entries not written yet.
        var head = _store.GetVolume(volume)?.Lsn ?? 0;
        _deleted.Raise(persistenceId, Math.Min(toSequenceNr, head));
        return Task.CompletedTask;
    }
}
