// The members this node refused as hosts (failed identity proofs, IdentityVerifier), remembered after they are gone:
// a refused member is downed at once, often before it ever saw itself Up, and is removed from the cluster moments
// later, so what is in ProvenHosts (refused while it stays) would leave the operator nothing to look at. Kept for the
// node's life, across its incarnations: the number of refusals (`cloudfs_identity_refusals_total` in /metrics) and the
// last Capacity of them, newest last. Each refusal is also logged once as an ERROR. Thread-safe.
using Akka.Cluster;

namespace CloudFs.Actors.Identity;

public sealed class IdentityRefusals
{
    /// <summary>How many refusals are remembered (the oldest is forgotten first).</summary>
    public const int Capacity = 64;

    private readonly object _lock = new();
    private readonly Queue<RefusedMember> _recent = new();
    private long _total;

    /// <summary>Members refused since the node started (each incarnation of a member counts once).</summary>
    public long Total => Interlocked.Read(ref _total);

    /// <summary>The last <see cref="Capacity"/> refusals, oldest first.</summary>
    public IReadOnlyList<RefusedMember> Recent
    {
        get { lock (_lock) return _recent.ToArray(); }
    }

    internal void Record(UniqueAddress member, string reason)
    {
        lock (_lock)
        {
            _recent.Enqueue(new RefusedMember(member.Address.ToString(), member.Uid, reason, DateTime.UtcNow));
            while (_recent.Count > Capacity) _recent.Dequeue();
        }
        Interlocked.Increment(ref _total);
    }
}

/// <summary>One refused member: its address (akka.tcp://cloudfs@IP:PORT) and incarnation, why, and when (UTC).</summary>
public sealed record RefusedMember(string Address, long Uid, string Reason, DateTime At);
