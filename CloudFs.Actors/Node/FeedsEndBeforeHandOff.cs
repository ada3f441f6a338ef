// A node that stops ends the feeds it serves as a primary before its shard region hands its volumes' shards off
// (CoordinatedShutdown's before-cluster-shutdown phase, before cluster-sharding-shutdown-region): the feed port stops
// accepting and the host agent stops every feeder.
//
// Why: a feeder tells each replica acknowledgement (ReplicaAck, one per keepalive at least) to the volume through the
// shard region. Once a hand-off began, the region buffered those for the shard and dropped them when the shard stopped,
// with Akka's "Dropping [N] buffered messages to shard [...] during hand off to avoid re-ordering" warning; after the
// region stopped they were dead letters. At this point nothing needs them: `cloudfs node` has closed NBD and HTTP and
// waited for their requests before the node stops, so no write waits for a quorum, and what the primary wrote stays in
// its log for its replicas to catch up with (from this host when it is back, or from the primary that takes over).
// Each feeder's stop tells the volume that its replica's acknowledgements no longer count, before the hand-off.
using Akka;
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Replication;

namespace CloudFs.Actors.Node;

internal static class FeedsEndBeforeHandOff
{
    public const string TaskName = "cloudfs-end-feeds";

    /// <summary>How long the task waits for the feeders to stop (each stops at once: it only cancels its loops).</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    public static void Register(ActorSystem system, FeedServer feeds, IActorRef agent)
    {
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, TaskName, async () =>
        {
            feeds.Dispose();
            // An agent that has already stopped (an actor system that was terminated, not stopped: a crash in tests)
            // serves no feed any more: nothing to wait for.
            using var cancel = new CancellationTokenSource();
            Task<bool> gone;
            try { gone = agent.WatchAsync(cancel.Token); }
            catch (InvalidOperationException) { return Done.Instance; }  // the actor system is terminating already
            try
            {
                var ended = agent.Ask<FeedsEnded>(EndFeeds.Instance, Patience);
                if (await Task.WhenAny(ended, gone).ConfigureAwait(false) == ended) await ended.ConfigureAwait(false);
            }
            catch (AskTimeoutException)
            {
                Logging.GetLogger(system, typeof(FeedsEndBeforeHandOff)).Warning(
                    "the feeds this node serves did not all end within {0:0} s; its shards hand off anyway", Patience.TotalSeconds);
            }
            finally { cancel.Cancel(); }
            return Done.Instance;
        });
    }
}
