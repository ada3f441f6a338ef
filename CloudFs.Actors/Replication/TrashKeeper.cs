// Each host's keeper of the trash (/user/cloudfs-trash): every cloudfs.trash.check-interval it has the host agent purge
// this host's copies of volumes that have been in the trash longer than cloudfs.trash.keep. The time is the trash
// entry's (the same on every replica), so every host purges its copy at about the same time, also one that was down.
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public sealed class TrashKeeper : ReceiveActor, IWithTimers
{
    public const string Name = "cloudfs-trash";

    private sealed record Check
    {
        public static readonly Check Instance = new();
    }

    private sealed record Checked(int Purged, string? Error);

    private readonly LogStore _store;
    private readonly TrashSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private bool _checking;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(LogStore store, TrashSettings settings) => Akka.Actor.Props.Create(() => new TrashKeeper(store, settings));

    public TrashKeeper(LogStore store, TrashSettings settings)
    {
        _store = store;
        _settings = settings;
        Receive<Check>(_ => Run());
        Receive<Checked>(c =>
        {
            _checking = false;
            if (c.Error is not null) _log.Warning("purging volumes whose time in the trash is up: {0}", c.Error);
        });
    }

    protected override void PreStart() => Timers.StartPeriodicTimer("check", Check.Instance, _settings.CheckInterval);

    private void Run()
    {
        if (_checking) return;
        var now = DateTimeOffset.UtcNow;
        var due = _store.ListVolumes().Where(v => v.TrashedAt is { } at && now - at >= _settings.Keep).ToArray();
        if (due.Length == 0) return;
        _checking = true;
        var agent = Context.System.ActorSelection(HostAgent.Path);
        var timeout = _settings.CheckInterval;
        _ = Purge().PipeTo(Self);

        async Task<Checked> Purge()
        {
            var purged = 0;
            var errors = new List<string>();
            foreach (var v in due)
            {
                try
                {
                    var reply = await agent.Ask<object>(new PurgeLocalVolume(v.BaseId.ToString()), timeout).ConfigureAwait(false);
                    if (reply is VolumePurged { Held: true }) purged++;
                    else if (reply is ControlFailed f) errors.Add(f.Reason);
                }
                catch (Exception e) { errors.Add($"volume {v.BaseId}: {e.GetBaseException().Message}"); }
            }
            return new Checked(purged, errors.Count == 0 ? null : string.Join("; ", errors));
        }
    }
}
