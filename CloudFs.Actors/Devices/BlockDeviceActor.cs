// The one owner of the node's device: opens and pins the LogStore (or takes the one the node opened before its actor
// system, so that a refused device binds no port), publishes it through CloudFsStorage, drives
// checkpoints and compaction from timers (not once the device failed; the engine also starts compaction itself when
// free space runs short), and writes a final checkpoint when it stops (LogStore.Dispose).
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Persistence;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Devices;

public sealed class BlockDeviceActor : ReceiveActor, IWithTimers
{
    public const string Name = "cloudfs-device";

    /// <param name="CheckpointTick">How often to ask the engine whether a checkpoint is due (it decides by interval and bytes).</param>
    /// <param name="CompactionInterval">How often to run compaction; null: never.</param>
    /// <param name="Opened">The store already opened with <paramref name="Options"/>; this actor owns it from its start
    /// (and closes it when it stops). Null: the actor opens it.</param>
    public sealed record Settings(LogStoreOptions Options, TimeSpan CheckpointTick, TimeSpan? CompactionInterval, LogStore? Opened = null);

    /// <summary>Asks for the open store: answered with <see cref="StoreOpened"/> or <see cref="Status.Failure"/>.</summary>
    public sealed record GetStore
    {
        public static readonly GetStore Instance = new();
    }

    public sealed record StoreOpened(LogStore Store);

    private sealed record Tick(bool Compaction);
    private sealed record Done(bool Compaction, Exception? Error, CompactionResult? Result);

    private readonly Settings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _cts = new();
    private LogStore? _store;
    private Exception? _openError;
    private bool _checkpointRunning, _compactionRunning, _restarted;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(Settings settings) => Akka.Actor.Props.Create(() => new BlockDeviceActor(settings));

    public BlockDeviceActor(Settings settings)
    {
        _settings = settings;
        Receive<GetStore>(_ => Sender.Tell(_store is not null ? new StoreOpened(_store) : new Status.Failure(_openError!)));
        Receive<Tick>(OnTick);
        Receive<Done>(OnDone);
    }

    protected override void PostRestart(Exception reason)
    {
        _restarted = true;
        base.PostRestart(reason);
    }

    protected override void PreStart()
    {
        var storage = CloudFsStorage.Get(Context.System);
        try
        {
            // After a restart the store given at the start is closed (PostStop): the device is opened again.
            _store = _restarted ? LogStore.Open(_settings.Options) : _settings.Opened ?? LogStore.Open(_settings.Options);
            storage.SetStore(_store, _settings.Options.Path);
        }
        catch (Exception e)
        {
            // The node reports this and stops; nothing was changed on the device. An expected refusal (held, too
            // small, another host's) is the node's one sentence; only a bug gets its stack trace here too.
            _openError = e;
            storage.Fail(e);
            if (e is not CloudFsException) _log.Error(e, "cannot open the CloudFS device {0}", _settings.Options.Path);
            return;
        }
        Timers.StartPeriodicTimer("checkpoint", new Tick(false), _settings.CheckpointTick);
        if (_settings.CompactionInterval is { } every)
            Timers.StartPeriodicTimer("compaction", new Tick(true), every);
    }

    private void OnTick(Tick tick)
    {
        // A failed device takes no checkpoint or relocation (the engine reported the failure once, at ERROR).
        if (_store is null || _store.DeviceFailure is not null) return;
        // One of each at a time: a slow checkpoint is not stacked up behind itself.
        if (tick.Compaction ? _compactionRunning : _checkpointRunning) return;
        if (tick.Compaction)
        {
            _compactionRunning = true;
            _store.CompactOnScheduleAsync(_cts.Token).PipeTo(Self, success: r => new Done(true, null, r), failure: e => new Done(true, e, null));
        }
        else
        {
            _checkpointRunning = true;
            _store.Checkpoints.MaybeWriteAsync(_cts.Token).PipeTo(Self, success: () => new Done(false, null, null), failure: e => new Done(false, e, null));
        }
    }

    private void OnDone(Done done)
    {
        if (done.Compaction) _compactionRunning = false; else _checkpointRunning = false;
        if (done.Error is { } e and not OperationCanceledException && _store?.DeviceFailure is null)
            _log.Error(e, "CloudFS {0} failed; the log stays valid and the next tick tries again", done.Compaction ? "compaction" : "checkpoint");
        else if (done.Result is { SegmentsCompacted: > 0 } r)
            _log.Info("compaction: {0} segment(s) compacted, {1} bytes copied, {2} segment(s) freed", r.SegmentsCompacted, r.BytesCopied, r.SegmentsFreed);
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        try
        {
            _store?.Dispose(); // writes the final checkpoint and releases the device
        }
        catch (Exception e)
        {
            _log.Error(e, "closing the CloudFS device {0} failed", _settings.Options.Path);
        }
        _cts.Dispose();
    }
}
