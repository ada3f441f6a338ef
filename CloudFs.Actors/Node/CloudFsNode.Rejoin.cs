// A node the cluster removed (downed by the split brain resolver or an operator, or quarantined by a peer) does not
// exit: it starts a new incarnation (a new ActorSystem with a new UID, on the same device, address and host id) once
// the old one has ended and closed its log, and joins through the other seeds. docs/CLUSTER.md, "Membership".
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka;
using Akka.Event;
using Akka.Remote;

namespace CloudFs.Actors.Node;

public sealed partial class CloudFsNode
{
    private readonly NodeOptions _asked;
    private readonly object _incarnationGate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _membership;
    private volatile NodeIncarnation _current;
    private int _incarnation = 1;

    /// <summary>Completes when the node has stopped for good: disposed, or its actor system ended for a reason it does
    /// not rejoin after (a fatal error, a leave). A node that was downed is not stopped: it rejoins.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>1 for the actor system the node started with, one more for each time it rejoined the cluster.</summary>
    public int Incarnation => Volatile.Read(ref _incarnation);

    /// <summary>
    /// The config of an incarnation that rejoins: the seed nodes without this node's own address. Akka's first seed
    /// joins itself when no other seed answers within seed-node-timeout (5 s); a node coming back after a stall, on a
    /// machine still loaded, must not found a cluster of its own beside the one that removed it (its volumes would
    /// have two placements). Without other seeds it joins itself, as a lone node does.
    /// </summary>
    private static Config RejoinConfig(Config config)
    {
        var others = config.GetStringList("akka.cluster.seed-nodes", []).Where(seed => !IsOwnAddress(config, Address.Parse(seed)));
        return ConfigurationFactory.ParseString($"akka.cluster.seed-nodes = [{string.Join(", ", others.Select(s => $"\"{s}\""))}]").WithFallback(config);
    }

    /// <summary>Whether <paramref name="address"/> is the remoting address <paramref name="config"/> binds.</summary>
    private static bool IsOwnAddress(Config config, Address address) =>
        address.Port == config.GetInt("akka.remote.dot-netty.tcp.port")
        && string.Equals(address.Host, config.GetString("akka.remote.dot-netty.tcp.hostname"), StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Starts the incarnation's membership watcher; the function it returns says whether the cluster downed this member.
    /// Akka shuts a downed member's actor system down with ClusterDowningReason, from its cluster-shutdown phase, while
    /// the node's actors still run; an actor system that is merely terminated (a crash in tests, with
    /// run-by-actor-system-terminate off) ends with the same reason, but only after its actors (the watcher) stopped.
    /// Akka does not always publish this member's own Down event before it shuts down, so that is not waited for.
    /// </summary>
    private static Func<bool> WatchMembership(ActorSystem system, ILoggingAdapter log)
    {
        var end = new MembershipEnd();
        system.ActorOf(Props.Create(() => new MembershipWatcher(log, end)), "cloudfs-membership-watcher");
        var shutdown = CoordinatedShutdown.Get(system);
        shutdown.AddTask(CoordinatedShutdown.PhaseClusterShutdown, "cloudfs-note-downing", () =>
        {
            if (shutdown.ShutdownReason is CoordinatedShutdown.ClusterDowningReason && !end.WatcherStopped && !end.Downed)
            {
                end.Downed = true;
                log.Warning("this member ({0}) was downed; it rejoins the cluster as a new incarnation once it has stopped", Cluster.Get(system).SelfUniqueAddress);
            }
            return Task.FromResult(Done.Instance);
        });
        return () => end.Downed;
    }

    private sealed class MembershipEnd
    {
        public volatile bool Downed;
        public volatile bool WatcherStopped;
    }

    /// <summary>Stands for the node's actors (it stops with them), and acts on a quarantine: an incarnation that a
    /// peer quarantined can never talk to it again, so it downs itself, which ends it and lets the node rejoin as a
    /// new one (Akka would leave it running, cut off, until the failure detector and the split brain resolver get to
    /// it).</summary>
    private sealed class MembershipWatcher : ReceiveActor
    {
        private readonly Cluster _cluster = Cluster.Get(Context.System);
        private readonly CoordinatedShutdown _shutdown = CoordinatedShutdown.Get(Context.System);
        private readonly MembershipEnd _end;

        public MembershipWatcher(ILoggingAdapter log, MembershipEnd end)
        {
            _end = end;
            Receive<ThisActorSystemQuarantinedEvent>(q =>
            {
                if (_shutdown.ShutdownReason is not null) return;
                log.Warning("{0} quarantined this member ({1}): it downs itself and rejoins the cluster as a new incarnation", q.RemoteAddress, q.LocalAddress);
                _cluster.Down(_cluster.SelfAddress);
            });
        }

        protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(ThisActorSystemQuarantinedEvent));

        protected override void PostStop()
        {
            _end.WatcherStopped = true;
            Context.System.EventStream.Unsubscribe(Self);
        }
    }

    /// <summary>Watches each incarnation end; after a downing (the cluster removed this member) starts the next one.</summary>
    private async Task KeepMembershipAsync(NodeIncarnation current)
    {
        var (enabled, firstDelay, maxDelay, aloneAfter) = current.Settings.Membership;
        var delay = firstDelay;
        var rejoins = 0;
        try
        {
            while (true)
            {
                await current.System.WhenTerminated.ConfigureAwait(false);
                // Only a downing (this member removed by the cluster, or by itself after a quarantine) is rejoined
                // after: a leave, a stop, a fatal error or a crash (a test's Terminate) ends the node as before.
                if (!enabled || Volatile.Read(ref _disposed) != 0 || !current.Downed) break;
                // An incarnation that was removed soon after it joined (a member that keeps failing its identity proof,
                // a cluster that keeps downing it) waits longer each time, up to rejoin-max-delay.
                delay = rejoins++ == 0 || DateTime.UtcNow - current.StartedAt > maxDelay ? firstDelay : TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, maxDelay.Ticks));
                var since = Stopwatch.StartNew();
                var address = current.Options.Listen + ":" + current.Options.AkkaPort;
                WriteLine("WARN ", $"this member ({address}, incarnation {Incarnation}) has stopped after it was downed; it rejoins the cluster as a new incarnation in {delay.TotalSeconds:0.#} s");
                NodeIncarnation? next = null;
                var attempts = 0;
                Exception? last = null;
                while (next is null)
                {
                    try { await Task.Delay(delay, _stopping.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException) { break; }
                    attempts++;
                    try
                    {
                        // The same device, host id and address (the bound port, which other members' seeds may name).
                        var options = _asked with { AkkaPort = current.Options.AkkaPort };
                        next = await StartIncarnationAsync(options, Replication, Attachments, IdentityRefusals, rejoining: since.Elapsed < aloneAfter, _stopping.Token).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        last = e;
                        if (_stopping.IsCancellationRequested) break;
                        WriteLine("WARN ", $"rejoining the cluster failed (attempt {attempts}): {e.GetType().Name}: {e.Message}; trying again");
                        delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, maxDelay.Ticks));
                    }
                }
                if (next is null) break;
                lock (_incarnationGate)
                {
                    if (Volatile.Read(ref _disposed) == 0)
                    {
                        _current = next;
                        Interlocked.Increment(ref _incarnation);
                    }
                }
                if (_current != next)
                {
                    // Disposed while it started: it leaves at once (DisposeAsync stopped the one before).
                    await CoordinatedShutdown.Get(next.System).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).ConfigureAwait(false);
                    break;
                }
                current.Successor.TrySetResult(next);
                Logging.GetLogger(next.System, typeof(CloudFsNode)).Warning(
                    "rejoined the cluster as {0} (incarnation {1}) {2:0.0} s after it was removed ({3} attempt(s){4})",
                    Cluster.Get(next.System).SelfUniqueAddress, Incarnation, since.Elapsed.TotalSeconds, attempts,
                    last is null ? "" : $"; last failure: {last.Message}");
                current = next;
            }
        }
        finally
        {
            _current.Successor.TrySetException(new ObjectDisposedException(nameof(CloudFsNode), "the node stopped"));
            _stopped.TrySetResult();
        }
    }

    /// <summary>A line in NodeLogger's format while no incarnation (and so no logger) runs.</summary>
    private static void WriteLine(string level, string message)
    {
        var line = $"{DateTime.UtcNow:yyyy-MM-dd'T'HH:mm:ss.fff'Z'} {level} [{nameof(CloudFsNode)}] {message}";
        lock (Console.Error) Console.Error.WriteLine(line);
    }
}
