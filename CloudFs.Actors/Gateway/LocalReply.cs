// The sender of a request the gateway tells a local volume actor directly: the actor's one reply completes a task.
// Unlike an ask's temporary actor it registers nowhere and arms no timer; a lost request is reported by LocalVolumeWriters.
using System.Threading.Tasks.Sources;
using Akka.Actor;
using Akka.Actor.Internal;

namespace CloudFs.Actors.Gateway;

internal sealed class LocalReply(LocalVolumeWriters writers) : MinimalActorRef, IValueTaskSource<object>
{
    /// <summary>The answer when the request reached no actor: the caller sends it again another way.</summary>
    public static readonly object LostRequest = new();

    private ManualResetValueTaskSourceCore<object> _answer;
    private int _answered;

    /// <summary>The one answer; awaited once.</summary>
    public ValueTask<object> Answer => new(this, _answer.Version);

    public override ActorPath Path => writers.ReplyPath;

    public override IActorRefProvider Provider => writers.Provider;

    protected override void TellInternal(object message, IActorRef sender) => Complete(message);

    public void Lost() => Complete(LostRequest);

    private void Complete(object answer)
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0) return;
        // An actor that answers must not run the caller's reply work on its own thread: from inside an actor the
        // caller resumes on the pool (as an ask's does); from a log completion, already on the pool, it resumes here.
        _answer.RunContinuationsAsynchronously = InternalCurrentActorCellKeeper.Current is not null;
        _answer.SetResult(answer);
    }

    object IValueTaskSource<object>.GetResult(short token) => _answer.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<object>.GetStatus(short token) => _answer.GetStatus(token);

    void IValueTaskSource<object>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _answer.OnCompleted(continuation, state, token, flags);
}
