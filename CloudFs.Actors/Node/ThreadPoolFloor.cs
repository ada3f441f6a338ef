// The thread pool a node needs. The engine's reads (and its key-file and device syncs) are blocking system calls run
// on pool threads, and the node's actors run on the same pool: with NBD queue depths of 32-64 per client, and several
// stores in one process, a pool that starts at one thread per core and ramps up by hill climbing leaves actors
// (a host agent's vote, a feed's acknowledgement) unscheduled for seconds while reads wait behind each other.
namespace CloudFs.Actors.Node;

public static class ThreadPoolFloor
{
    /// <summary>Worker threads the pool keeps ready before it starts to ramp up slowly.</summary>
    public const int Workers = 64;

    /// <summary>Raises the pool's minimum worker threads to <see cref="Workers"/> (never lowers it).</summary>
    public static void Raise()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        if (workers < Workers) ThreadPool.SetMinThreads(Workers, io);
    }
}
