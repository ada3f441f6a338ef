// The member that runs the cluster singletons (placement, the shard coordinator: the oldest) waits, when it stops, in
// CoordinatedShutdown's cluster-leave phase until the leader has moved it from Leaving to Exiting and no member is
// still Leaving; only then do its singletons hand over (cluster-exiting). Every other member goes on at once, as in Akka.
//
// Why: Akka's singleton manager on the oldest member hands its singletons to the oldest member its buffer still
// counts, and the buffer drops another member only once it is Exiting (not while Leaving); a member that leaves drops
// itself from its own buffer at the start of cluster-exiting, so it never takes singletons over. When every member
// stops at once (the whole cluster is shut down), Akka's order had the oldest start cluster-exiting while the others
// were still Leaving: it offered the singletons to a member that was itself leaving, which never took them, and it
// retried for the whole cluster-exiting timeout (10 s), meanwhile talking to members whose processes had gone. Once
// every member that leaves is Exiting, the oldest's buffer has dropped them all: it hands over to a member that stays,
// or, when none does, stops its singletons at once (after one hand-over retry interval). The wait ends too when the
// leader cannot move anyone (a member unreachable and neither Down nor Exiting blocks convergence): then Akka's own
// waits apply, as before.
using Akka;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace CloudFs.Actors.Node;

internal static class ExitingBeforeHandOver
{
    public const string TaskName = "cloudfs-wait-exiting";

    /// <summary>Adds the wait to <paramref name="system"/>'s cluster-leave phase (bounded by that phase's timeout).</summary>
    public static void Register(ActorSystem system)
    {
        var shutdown = CoordinatedShutdown.Get(system);
        shutdown.AddTask(CoordinatedShutdown.PhaseClusterLeave, TaskName, () =>
        {
            var cluster = Cluster.Get(system);
            if (cluster.IsTerminated || cluster.SelfMember.Status is MemberStatus.Down or MemberStatus.Removed) return Task.FromResult(Done.Instance);
            var exiting = new TaskCompletionSource<Done>(TaskCreationOptions.RunContinuationsAsynchronously);
            // Ends a second before the phase would time out, saying why, rather than leaving Akka's bare timeout warning.
            var patience = shutdown.Timeout(CoordinatedShutdown.PhaseClusterLeave) - TimeSpan.FromSeconds(1);
            try { system.ActorOf(Props.Create(() => new Watcher(exiting, patience)), TaskName); }
            catch (Exception) { return Task.FromResult(Done.Instance); } // the system is already stopping its actors
            return exiting.Task;
        });
    }

    /// <summary>Whether this member may go on to cluster-exiting: it does not run the singletons, or it is Exiting and no
    /// member is still Leaving (each one that left is Exiting in its view), or the leader cannot move anyone.</summary>
    private static bool MayGoOn(ClusterEvent.CurrentClusterState state, UniqueAddress self)
    {
        var me = state.Members.FirstOrDefault(m => m.UniqueAddress.Equals(self));
        if (me is null || me.Status is not (MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting)) return true;
        // Akka's convergence (and so any Leaving -> Exiting) waits while a member is unreachable unless it is Down or Exiting.
        if (state.Unreachable.Any(m => m.Status is not (MemberStatus.Down or MemberStatus.Exiting))) return true;
        // Only the oldest runs the singletons. Any other member goes on at once, as in Akka, and so drops itself from its
        // own singleton buffers: a member that is leaving never takes the singletons over.
        // (Members already Exiting are going too: the oldest of those that are not runs them, or takes them over.)
        if (state.Members.Any(m => m.Status is MemberStatus.Up or MemberStatus.Leaving && m.IsOlderThan(me))) return true;
        return me.Status == MemberStatus.Exiting && !state.Members.Any(m => m.Status == MemberStatus.Leaving);
    }

    /// <summary>Judges only snapshots the cluster's event publisher sends after each member event: by the time one
    /// arrives, the publisher has given every earlier event to every subscriber (the singletons' buffers too), so
    /// cluster-exiting's first message to a buffer comes after the Exiting of the members that left with this one.</summary>
    private sealed class Watcher : ReceiveActor, IWithTimers
    {
        private sealed class GiveUp
        {
            public static readonly GiveUp Instance = new();
        }

        private readonly Cluster _cluster = Cluster.Get(Context.System);
        private readonly TaskCompletionSource<Done> _exiting;
        private readonly TimeSpan _patience;
        // Snapshots asked for and not yet received (the subscription's initial one too): the watcher stops only once
        // none is on its way, so that none arrives after it stopped (a dead letter).
        private int _snapshotsDue = 1;
        private bool _decided;

        public ITimerScheduler Timers { get; set; } = null!;

        public Watcher(TaskCompletionSource<Done> exiting, TimeSpan patience)
        {
            _exiting = exiting;
            _patience = patience;
            Receive<ClusterEvent.CurrentClusterState>(state =>
            {
                _snapshotsDue--;
                if (!_decided && MayGoOn(state, _cluster.SelfUniqueAddress)) Decide();
                else if (_decided && _snapshotsDue == 0) Context.Stop(Self);
            });
            Receive<GiveUp>(_ =>
            {
                if (_decided) return;
                Context.GetLogger().Warning("the members leaving with this one were not all moved to Exiting within {0:0.#} s (members: {1}); its singletons hand over anyway",
                    _patience.TotalSeconds, string.Join(", ", _cluster.State.Members.Select(m => $"{m.Address} {m.Status}")));
                Decide();
            });
            Receive<ClusterEvent.IMemberEvent>(_ => AskSnapshot());
            Receive<ClusterEvent.IReachabilityEvent>(_ => AskSnapshot());
        }

        private void AskSnapshot()
        {
            if (_decided) return;
            _snapshotsDue++;
            _cluster.SendCurrentClusterState(Self);
        }

        /// <summary>cluster-leave may end now; the watcher stops once the snapshots it asked for are in.</summary>
        private void Decide()
        {
            _decided = true;
            Timers.CancelAll();
            _cluster.Unsubscribe(Self);
            _exiting.TrySetResult(Done.Instance);
            if (_snapshotsDue == 0) Context.Stop(Self);
        }

        protected override void PreStart()
        {
            if (_patience > TimeSpan.Zero) Timers.StartSingleTimer(GiveUp.Instance, GiveUp.Instance, _patience);
            else Self.Tell(GiveUp.Instance);
            _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
                typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
        }

        // Done, given up, or stopped with the system: cluster-leave may end.
        protected override void PostStop()
        {
            _cluster.Unsubscribe(Self);
            _exiting.TrySetResult(Done.Instance);
        }
    }
}
