// The request ids a volume actor has taken most recently, so that the gateway's repeated attempts of a slow write are
// not appended a second time (see ShardedVolumeGateway.AskAsync).
namespace CloudFs.Actors.Volumes;

/// <summary>
/// A bounded window of request ids, oldest forgotten first. A repeat that arrives after its id left the window is
/// taken again: the same bytes at the same place, behind the first in the actor's order, so the window only saves
/// log space and versions, it does not decide correctness.
/// </summary>
internal sealed class RecentRequests(int capacity)
{
    // Grown as requests come (not sized up front): an idle volume's actor holds next to nothing.
    private readonly HashSet<long> _ids = new();
    private readonly Queue<long> _order = new();

    /// <summary>True for a request to take (id 0, or one not seen within the window), and remembers it.</summary>
    public bool Admit(long id)
    {
        if (id == 0) return true;
        if (!_ids.Add(id)) return false;
        _order.Enqueue(id);
        if (_order.Count > capacity) _ids.Remove(_order.Dequeue());
        return true;
    }
}
