// The volume actors on this node that are their volume's writer (primary), by volume: the gateway tells them its
// requests directly, without an ask, a timer or the shard region's two hops.
using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Gateway;

/// <summary>
/// Per actor system. A VolumeActor registers itself once it has recovered as its volume's writer and unregisters when
/// it stops. A request told to an actor that stopped meanwhile becomes a dead letter: <see cref="LostReplies"/> hands
/// it back to its <see cref="LocalReply"/>, and the gateway sends it again through the shard region.
/// </summary>
public sealed class LocalVolumeWriters : IExtension
{
    private readonly ConcurrentDictionary<Id160, IActorRef> _writers = new();

    internal LocalVolumeWriters(ExtendedActorSystem system)
    {
        Provider = system.Provider;
        ReplyPath = new RootActorPath(system.Provider.DefaultAddress) / "temp" / "cloudfs-local-reply";
        system.SystemActorOf(Props.Create(() => new LostReplies()), "cloudfs-lost-local-replies");
    }

    public static LocalVolumeWriters Get(ActorSystem system) => system.WithExtension<LocalVolumeWriters, LocalVolumeWritersProvider>();

    internal IActorRefProvider Provider { get; }
    /// <summary>One path for every <see cref="LocalReply"/>: they are never addressed by path, only held.</summary>
    internal ActorPath ReplyPath { get; }

    public void Register(Id160 volume, IActorRef writer) => _writers[volume] = writer;

    /// <summary>Removes <paramref name="writer"/> only if it is still the one registered (a successor may be already).</summary>
    public void Unregister(Id160 volume, IActorRef writer) => _writers.TryRemove(new KeyValuePair<Id160, IActorRef>(volume, writer));

    public bool TryGet(Id160 volume, out IActorRef writer) => _writers.TryGetValue(volume, out writer!);

    /// <summary>Tells a <see cref="LocalReply"/> that its request reached no actor (it stopped after being looked up).</summary>
    private sealed class LostReplies : ReceiveActor
    {
        public LostReplies()
        {
            Receive<DeadLetter>(d =>
            {
                if (d.Sender is LocalReply reply) reply.Lost();
                else if (d.Message is IAnswersTo { ReplyTo: LocalReply waiting }) waiting.Lost();
            });
        }

        protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(DeadLetter));
    }
}

public sealed class LocalVolumeWritersProvider : ExtensionIdProvider<LocalVolumeWriters>
{
    public override LocalVolumeWriters CreateExtension(ExtendedActorSystem system) => new(system);
}
