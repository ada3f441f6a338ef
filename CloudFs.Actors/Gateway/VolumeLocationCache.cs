// What this node knows of volumes it does not hold: placement's answer to a lookup of one volume (LocateVolume, O(1)),
// kept for a short time, so a burst of NBD connections or HTTP requests for a remote volume costs one lookup while a
// change (a failover, a new size) is seen within that time. A volume that is not found is not remembered: one created
// a moment ago elsewhere is found by the next lookup.
using System.Collections.Concurrent;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Gateway;

/// <param name="lookup">One lookup of a volume (null: placement did not answer).</param>
/// <param name="keep">How long an answer is used.</param>
/// <param name="clock">The time (tests pass their own).</param>
public sealed class VolumeLocationCache(Func<Id160, CancellationToken, Task<VolumeLocation?>> lookup, TimeSpan keep, Func<DateTime>? clock = null)
{
    /// <summary>The most entries kept; past it, expired entries are dropped before another is added.</summary>
    public const int Capacity = 100_000;

    private readonly ConcurrentDictionary<Id160, (VolumeInfo Info, DateTime Until)> _known = new();
    private readonly Func<DateTime> _now = clock ?? (() => DateTime.UtcNow);

    public int Count => _known.Count;

    public async Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct)
    {
        var now = _now();
        if (_known.TryGetValue(volume, out var entry) && entry.Until > now) return entry.Info;
        var location = await lookup(volume, ct).ConfigureAwait(false);
        if (location?.Volume is not { } found)
        {
            _known.TryRemove(volume, out _);
            return null;
        }
        var info = ToInfo(volume, found);
        if (_known.Count >= Capacity)
            foreach (var (id, e) in _known)
                if (e.Until <= now) _known.TryRemove(id, out _);
        if (_known.Count < Capacity || _known.ContainsKey(volume)) _known[volume] = (info, now + keep);
        return info;
    }

    /// <summary>The volume as a node that does not hold it sees it: writable only through its primary.</summary>
    internal static VolumeInfo ToInfo(Id160 volume, VolumeSummary s) =>
        new(volume, s.Size, s.Mode, Id160.Parse(s.Version), 0, s.Parent is { } parent ? Id160.Parse(parent) : null,
            s.Replicas.Select(Id160.Parse).ToArray(), false);
}
