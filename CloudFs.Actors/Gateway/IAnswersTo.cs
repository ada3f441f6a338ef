// A message that carries the sender of the request it completes: when it becomes a dead letter (its actor stopped),
// LocalVolumeWriters tells a waiting LocalReply that its request was lost, so the gateway sends it again.
using Akka.Actor;

namespace CloudFs.Actors.Gateway;

internal interface IAnswersTo
{
    IActorRef ReplyTo { get; }
}
