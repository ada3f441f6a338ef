// What changed in the host's report since a stamp (ChangeClock): the volumes whose VolumeInfo changed after it and the
// volumes dropped after it, so an idle host answers placement with nothing instead of every volume it holds.
using System.Collections.Concurrent;

namespace CloudFs.BlockDevice;

/// <summary>The volumes changed after a stamp (<paramref name="Changed"/>), those no longer held (<paramref name="Removed"/>),
/// and the stamp to ask from next time (<paramref name="Stamp"/>).</summary>
public sealed record VolumeChanges(IReadOnlyList<VolumeInfo> Changed, IReadOnlyList<Id160> Removed, long Stamp);

public sealed partial class LogStore
{
    // Volumes dropped from this log (purged) and when, by ChangeClock: a host reports them removed once.
    private readonly ConcurrentDictionary<Id160, long> _removedAt = new();

    private void Removed(Id160 volume)
    {
        _removedAt[volume] = ChangeClock.Changing;
        _removedAt[volume] = ChangeClock.Next();
    }

    /// <summary>
    /// The committed volumes whose <see cref="VolumeInfo"/> changed after <paramref name="since"/> (every volume for 0),
    /// and those dropped after it. Looks at each volume's stamp (no copy of a volume that did not change); the stamp
    /// returned is taken before the look, so a change made meanwhile is in this answer or in the next.
    /// </summary>
    public VolumeChanges ChangesSince(long since)
    {
        var now = ChangeClock.Now;
        // No stamp taken in this process since then: nothing to look for (an idle host, asked every round).
        if (since == now) return new VolumeChanges([], [], now);
        var changed = new List<VolumeInfo>();
        foreach (var v in _volumes.Values)
            if (v.Committed && Volatile.Read(ref v.ChangeStamp) > since)
                changed.Add(Info(v));
        var removed = new List<Id160>();
        foreach (var (id, at) in _removedAt)
            if (at > since && !_volumes.ContainsKey(id))
                removed.Add(id);
        return new VolumeChanges(changed, removed, now);
    }
}
