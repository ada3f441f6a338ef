// Where each follower on this host stands with its primary (connecting, a full resync's progress, catching up, following,
// or retrying after an error), set by the followers as they go and read by the host agent into its volume reports, so
// placement (VolumeHealth) can tell a replica that is resyncing from one that is current or one that is not following.
// Each change takes a ChangeClock stamp: a report carries only the followers that changed since placement last asked.
using System.Collections.Concurrent;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public sealed class ReplicaSyncs
{
    private readonly ConcurrentDictionary<Id160, (ReplicaSync State, long Stamp)> _byVolume = new();
    // Followers stopped, and when (ChangeClock): reported once as stopped.
    private readonly ConcurrentDictionary<Id160, long> _stoppedAt = new();

    /// <summary>The follower of <paramref name="volume"/> is at <paramref name="state"/> now.</summary>
    internal void Set(Id160 volume, ReplicaSync state)
    {
        _byVolume[volume] = (state, ChangeClock.Changing);
        _byVolume[volume] = (state, ChangeClock.Next());
    }

    /// <summary>The follower of <paramref name="volume"/> stopped: this host no longer follows it.</summary>
    internal void Remove(Id160 volume)
    {
        if (!_byVolume.TryRemove(volume, out _)) return;
        _stoppedAt[volume] = ChangeClock.Changing;
        _stoppedAt[volume] = ChangeClock.Next();
    }

    public ReplicaSync? Of(Id160 volume) => _byVolume.TryGetValue(volume, out var s) ? s.State : null;

    /// <summary>Every follower's state, as reported to placement.</summary>
    public ReplicaSync[] Snapshot() => _byVolume.Values.Select(s => s.State).ToArray();

    /// <summary>The followers whose state changed after <paramref name="since"/> (every one for 0), and the volumes whose
    /// follower stopped after it (none for 0: a full report lists every follower there is).</summary>
    public (ReplicaSync[] Changed, string[] Stopped) ChangesSince(long since)
    {
        var changed = since <= 0 ? Snapshot() : _byVolume.Values.Where(s => s.Stamp > since).Select(s => s.State).ToArray();
        var stopped = since <= 0 ? [] : _stoppedAt.Where(s => s.Value > since && !_byVolume.ContainsKey(s.Key)).Select(s => s.Key.ToString()).ToArray();
        return (changed, stopped);
    }
}
