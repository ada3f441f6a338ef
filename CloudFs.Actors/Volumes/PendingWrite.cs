// One client write (or zero write) whose log entries the volume's actor has handed to the engine: counted down as the
// log completes them, and answered straight from the last completion, without a hop back through the actor, unless
// the actor must see it (a replicated sync volume's quorum) or an entry failed (the actor then recovers its head).
// The log tells it on its own thread (IAppendCompletion): what it does there is count down and tell, never block.
using Akka.Actor;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

internal sealed class PendingWrite(IActorRef replyTo, int entries, bool fua, AppendsInFlight owner) : IAppendCompletion
{
    public IActorRef ReplyTo { get; } = replyTo;
    public bool Fua { get; } = fua;
    private int _remaining = entries;
    private long _lsn;
    private Exception? _error;

    /// <summary>One of the write's entries is about to be handed to the engine (before it may complete).</summary>
    public void Starting() => owner.Started();

    /// <summary>The entry counted by <see cref="Starting"/> was refused before it took an lsn (nothing of it is stored).</summary>
    public void Refused(Exception error)
    {
        owner.Ended();
        NotStored(error);
    }

    /// <summary>One of the write's entries was refused before it was handed to the engine (nothing of it is stored).</summary>
    public void NotStored(Exception error)
    {
        Interlocked.CompareExchange(ref _error, error, null);
        CountDown();
    }

    void IAppendCompletion.Completed(AppendResult result)
    {
        Stored(result.Lsn);
        owner.Ended();
    }

    void IAppendCompletion.Failed(Exception error)
    {
        Interlocked.CompareExchange(ref _error, error, null);
        // The entries after it were chained onto it and fail too: the actor recovers its head once none is left.
        owner.Failed(error);
        CountDown();
        owner.Ended();
    }

    private void Stored(long lsn)
    {
        // Completions of a group may be told on different threads, not necessarily in log order: the write is stored
        // at its highest lsn (what a sync volume's quorum must reach).
        long seen;
        while (lsn > (seen = Volatile.Read(ref _lsn)) && Interlocked.CompareExchange(ref _lsn, lsn, seen) != seen) { }
        CountDown();
    }

    private void CountDown()
    {
        if (Interlocked.Decrement(ref _remaining) > 0) return;
        if (Volatile.Read(ref _error) is { } error) ReplyTo.Tell(VolumeFailure.From(owner.Volume, error));
        else if (owner.WaitsForQuorum) owner.Actor.Tell(new WriteStored(this, Volatile.Read(ref _lsn)));
        else ReplyTo.Tell(new VolumeAck(Volatile.Read(ref _lsn)));
    }
}

/// <summary>Every entry of a replicated sync volume's write is in this host's log: the write now waits for its quorum.</summary>
internal sealed record WriteStored(PendingWrite Write, long Lsn) : IAnswersTo
{
    public IActorRef ReplyTo => Write.ReplyTo;
}

/// <summary>
/// How many of a volume actor's entries are in the engine and not yet completed, shared by the actor and the
/// completions: the actor waits for none before a replica-set change and before it recovers after a failed entry.
/// </summary>
internal sealed class AppendsInFlight(Id160 volume, IActorRef actor)
{
    private int _count;
    private int _drainWanted;
    private int _failed;

    public Id160 Volume { get; } = volume;
    public IActorRef Actor { get; } = actor;
    /// <summary>Set by the actor: acknowledgements go through it (a replicated sync volume's quorum).</summary>
    public bool WaitsForQuorum { get; set; }

    public void Started() => Interlocked.Increment(ref _count);

    public void Ended()
    {
        if (Interlocked.Decrement(ref _count) == 0 && Interlocked.Exchange(ref _drainWanted, 0) == 1) Actor.Tell(AppendsDrained.Instance);
    }

    /// <summary>The first failure since the actor's last recovery is told to it (once).</summary>
    public void Failed(Exception error)
    {
        if (Interlocked.Exchange(ref _failed, 1) == 0) Actor.Tell(new AppendFailed(error));
    }

    /// <summary>True when nothing is in flight now; otherwise <see cref="AppendsDrained"/> is told once the last ends.</summary>
    public bool DrainedOrNotify()
    {
        Volatile.Write(ref _drainWanted, 1);
        if (Volatile.Read(ref _count) != 0) return false;
        // Nothing left: take the notification back (a completion that raced us may have taken it already: the actor
        // then gets one AppendsDrained more, which it ignores when it waits for nothing).
        Interlocked.Exchange(ref _drainWanted, 0);
        return true;
    }
}

/// <summary>Every entry the actor handed to the engine has completed (it asked to hear it).</summary>
internal sealed class AppendsDrained
{
    public static readonly AppendsDrained Instance = new();
}

/// <summary>An entry of the actor's failed in the log: the chain behind it was abandoned, the actor recovers its head.</summary>
internal sealed record AppendFailed(Exception Error);
