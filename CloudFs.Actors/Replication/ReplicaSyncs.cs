// Where each follower on this host stands with its primary (connecting, a full resync's progress, catching up, following,
// or retrying after an error), set by the followers as they go and read by the host agent into its volume reports, so
// placement (VolumeHealth) can tell a replica that is resyncing from one that is current or one that is not following.
using System.Collections.Concurrent;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public sealed class ReplicaSyncs
{
    private readonly ConcurrentDictionary<Id160, ReplicaSync> _byVolume = new();

    /// <summary>The follower of <paramref name="volume"/> is at <paramref name="state"/> now.</summary>
    internal void Set(Id160 volume, ReplicaSync state) => _byVolume[volume] = state;

    /// <summary>The follower of <paramref name="volume"/> stopped: this host no longer follows it.</summary>
    internal void Remove(Id160 volume) => _byVolume.TryRemove(volume, out _);

    public ReplicaSync? Of(Id160 volume) => _byVolume.GetValueOrDefault(volume);

    /// <summary>Every follower's state, as reported to placement.</summary>
    public ReplicaSync[] Snapshot() => _byVolume.Values.ToArray();
}
