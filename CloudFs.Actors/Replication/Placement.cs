// Kademlia-style placement: the replica set of a key is the N hosts nearest to it by XOR distance, nearest first
// (the primary). Deterministic, evenly spread for uniform keys, and a host joining or leaving moves only the keys
// it is among the nearest of.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public static class Placement
{
    /// <summary>The <paramref name="count"/> hosts of <paramref name="hosts"/> nearest to <paramref name="key"/>, nearest first.</summary>
    public static IReadOnlyList<Id160> Nearest(Id160 key, IEnumerable<Id160> hosts, int count) =>
        hosts.Distinct().OrderBy(h => h.Xor(key)).Take(count).ToArray();

    /// <summary>Sync acknowledgement and share threshold: a majority of a replica set of <paramref name="replicas"/> hosts.</summary>
    public static int Majority(int replicas) => Math.Max(1, replicas) / 2 + 1;
}
