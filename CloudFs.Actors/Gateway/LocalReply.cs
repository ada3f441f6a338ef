// The sender of a request the gateway tells a local volume actor directly: the actor's one reply completes a task.
// Unlike an ask's temporary actor it registers nowhere and arms no timer; a lost request is reported by LocalVolumeWriters.
using Akka.Actor;

namespace CloudFs.Actors.Gateway;

internal sealed class LocalReply(LocalVolumeWriters writers) : MinimalActorRef
{
    /// <summary>The answer when the request reached no actor: the caller sends it again another way.</summary>
    public static readonly object LostRequest = new();

    // Continuations run on the pool, as an ask's do: the actor that answers must not run the caller's reply work.
    private readonly TaskCompletionSource<object> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<object> Answer => _answer.Task;

    public override ActorPath Path => writers.ReplyPath;

    public override IActorRefProvider Provider => writers.Provider;

    protected override void TellInternal(object message, IActorRef sender) => _answer.TrySetResult(message);

    public void Lost() => _answer.TrySetResult(LostRequest);
}
