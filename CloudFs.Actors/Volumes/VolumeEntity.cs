// A volume's sharded entity: the parent of its VolumeActor, there to supervise it. The writer restarts on purpose to
// recover from a new head (a view change or lifecycle entry it appended, an entry that failed in the log:
// VolumeActor.HeadMovedException), and the shard's own supervisor logged each such restart as an ERROR with a stack
// trace, on every `resize`, `rm` or `protect`. Here that restart is quiet; every other failure is handled and logged as
// before (Akka's default decider). Sharded messages are forwarded to the writer; this node's own requests reach the
// writer directly (LocalVolumeWriters), not through here.
using Akka.Actor;
using Akka.Cluster.Sharding;

namespace CloudFs.Actors.Volumes;

internal sealed class VolumeEntity : UntypedActor
{
    private readonly IActorRef _writer;

    /// <param name="writer">The writer's props, given the name of the shard this entity lives in (which host's shard
    /// it is: VolumeActor stands for another host in another host's shard).</param>
    public VolumeEntity(Func<string, Props> writer)
    {
        _writer = Context.Watch(Context.ActorOf(writer(Context.Parent.Path.Name), "writer"));
    }

    public static Props Props(Func<string, Props> writer) => Akka.Actor.Props.Create(() => new VolumeEntity(writer));

    protected override SupervisorStrategy SupervisorStrategy() => QuietRecovery.Instance;

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            // The writer asks its shard to passivate it: the shard passivates this entity (and with it the writer).
            case Passivate passivate when Sender.Equals(_writer):
                Context.Parent.Tell(passivate);
                break;
            case Terminated t when t.ActorRef.Equals(_writer):
                Context.Stop(Self);
                break;
            default:
                _writer.Forward(message);
                break;
        }
    }

    /// <summary>Akka's default supervision, without the ERROR line for a writer that restarts to recover from a new head.</summary>
    private sealed class QuietRecovery() : OneForOneStrategy(Akka.Actor.SupervisorStrategy.DefaultDecider)
    {
        public static readonly QuietRecovery Instance = new();

        protected override void LogFailure(IActorContext context, IActorRef child, Exception cause, Directive directive)
        {
            if (cause is VolumeActor.HeadMovedException) return;
            base.LogFailure(context, child, cause, directive);
        }
    }
}
