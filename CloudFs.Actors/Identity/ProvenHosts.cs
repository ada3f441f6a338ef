// This node's directory of the members it has verified (IdentityVerifier fills it): the only source on this node of
// which member is which host, and of the key a share for a host is sealed to. Placement counts only the hosts in it;
// a host's agent seals shares only to the keys in it. Members that failed their proof are kept as refused until they
// leave, so they are never taken for hosts; the node's IdentityRefusals remembers them after that, for the operator.
// Thread-safe: actors of the node read it, one actor writes it.
using Akka.Cluster;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Identity;

public sealed class ProvenHosts
{
    private readonly object _lock = new();
    private readonly Dictionary<UniqueAddress, (ProvenHost Host, long Order)> _proven = new();
    private readonly Dictionary<UniqueAddress, string> _refused = new();
    private long _order;
    private readonly IdentityRefusals _refusals;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="certified">True with TLS: a proof counts only with a node certificate of the cluster authority.</param>
    /// <param name="refusals">Where each refusal is also recorded (the node's, kept after the member is gone).</param>
    public ProvenHosts(bool certified, IdentityRefusals refusals)
    {
        Certified = certified;
        _refusals = refusals;
    }

    /// <summary>True with TLS (proofs carry certificates); false: proofs are taken as reported.</summary>
    public bool Certified { get; }

    /// <summary>The member at <paramref name="member"/> proved to be <paramref name="host"/>.</summary>
    internal void Prove(UniqueAddress member, ProvenHost host)
    {
        lock (_lock)
        {
            _refused.Remove(member);
            _proven[member] = (host, ++_order);
        }
        Changed();
    }

    /// <summary>The member at <paramref name="member"/> failed its proof (<paramref name="reason"/>): never a host while it stays.</summary>
    internal void Refuse(UniqueAddress member, string reason)
    {
        lock (_lock)
        {
            _proven.Remove(member);
            _refused[member] = reason;
        }
        _refusals.Record(member, reason);
        Changed();
    }

    /// <summary>The member is downed (no host any more) or <paramref name="removed"/> (forgotten, refused or not).</summary>
    internal void Forget(UniqueAddress member, bool removed)
    {
        lock (_lock)
        {
            _proven.Remove(member);
            if (removed) _refused.Remove(member);
        }
        Changed();
    }

    private void Changed()
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    /// <summary>The proven member that is <paramref name="host"/> (the most recently proven incarnation); null when none is.</summary>
    public ProvenHost? OfHost(Id160 host)
    {
        lock (_lock)
            return _proven.Values.Where(p => p.Host.HostId == host).OrderByDescending(p => p.Order).Select(p => p.Host).FirstOrDefault();
    }

    /// <summary>The proven member at <paramref name="address"/> (akka.tcp://cloudfs@IP:PORT); null when it is not proven.</summary>
    public ProvenHost? OfAddress(string address)
    {
        lock (_lock)
            return _proven.Values.Where(p => p.Host.Address == address).OrderByDescending(p => p.Order).Select(p => p.Host).FirstOrDefault();
    }

    /// <summary>True when the member at <paramref name="address"/> failed its proof.</summary>
    public bool IsRefused(string address) => RefusalOf(address) is not null;

    /// <summary>Why the member at <paramref name="address"/> was refused; null when it was not (or a later incarnation there proved itself).</summary>
    public string? RefusalOf(string address)
    {
        lock (_lock)
            return _proven.Values.Any(p => p.Host.Address == address) ? null
                : _refused.Where(m => m.Key.Address.ToString() == address).Select(m => m.Value).FirstOrDefault();
    }

    /// <summary>Every proven member.</summary>
    public IReadOnlyList<ProvenHost> All()
    {
        lock (_lock) return _proven.Values.OrderBy(p => p.Order).Select(p => p.Host).ToArray();
    }

    /// <summary>
    /// <paramref name="lookup"/>'s answer as soon as it has one, or null after <paramref name="timeout"/>: for a proof that
    /// is under way (a member that joined a moment ago), so a share or a create right after a join does not fail.
    /// </summary>
    public async Task<ProvenHost?> WaitAsync(Func<ProvenHosts, ProvenHost?> lookup, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            Task changed;
            lock (_lock) changed = _changed.Task;
            if (lookup(this) is { } found) return found;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return null;
            try { await changed.WaitAsync(left).ConfigureAwait(false); }
            catch (TimeoutException) { }
        }
    }
}
