// What compaction must keep for replicas: on the writer of a replicated volume, every entry after the lowest lsn its
// replicas are known to hold stays streamable (its segment is not compacted), so a replica that is behind can still
// chain on; the volume's actor raises that floor as replicas acknowledge.
using System.Collections.Concurrent;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    private readonly ConcurrentDictionary<Id160, long> _streamFloors = new();

    /// <summary>
    /// Every replica of <paramref name="volume"/> holds its entries up to <paramref name="lsn"/>: compaction may make
    /// entries up to there unstreamable, never the ones after. Until it is set, a replicated volume's writer keeps
    /// every entry streamable.
    /// </summary>
    public void SetStreamFloor(Id160 volume, long lsn)
    {
        _streamFloors.AddOrUpdate(volume, lsn, (_, old) => Math.Max(old, lsn));
        // The in-memory copies every replica already holds durably are no longer needed (an idle volume keeps none).
        if (_volumes.TryGetValue(volume, out var v)) v.Recent?.DropThrough(lsn);
    }

    /// <summary>Segments holding entries a replica may still need (see <see cref="SetStreamFloor"/>).</summary>
    private HashSet<int> RetainedSegments()
    {
        var keep = new HashSet<int>();
        foreach (var v in _volumes.Values)
        {
            if (!v.IsWritable) continue;
            lock (v.IndexLock)
            {
                if (v.Replicas.Length < 2) continue;
                var floor = Math.Max(_streamFloors.GetValueOrDefault(v.BaseId), v.OldestStreamableLsn - 1);
                for (var l = floor + 1; l <= v.Lsns.Count; l++)
                    keep.Add((int)((v.Lsns.BlockOf(l) * BlockSize - _layout.FirstSegmentOffset) / _layout.SegmentSize));
            }
        }
        return keep;
    }
}
