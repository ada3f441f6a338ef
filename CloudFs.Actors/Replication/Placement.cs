// Rendezvous (highest-random-weight) placement: every host gets a weight for a key, the hash of the pair; the replica
// set of the key is the N hosts of highest weight, highest first (the primary). Deterministic for a key, every host
// takes 1/n of the keys in expectation whatever its id, and a host joining or leaving moves only the keys it is
// among the N of. (XOR distance, Kademlia's metric, spreads by the gaps between the host ids: with 16 random hosts
// the host with the fewest primaries had a median 15 of 1,000 and the one with the most 134; rendezvous 50 and 77.
// docs/CLUSTER.md "Placement".)
using System.Buffers.Binary;
using System.Security.Cryptography;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public static class Placement
{
    /// <summary>The <paramref name="count"/> hosts of <paramref name="hosts"/> of highest weight for <paramref name="key"/>, highest first.</summary>
    public static IReadOnlyList<Id160> Choose(Id160 key, IEnumerable<Id160> hosts, int count) =>
        hosts.Distinct().Select(h => (Host: h, Weight: Weight(key, h))).OrderByDescending(x => x.Weight).ThenBy(x => x.Host)
            .Take(count).Select(x => x.Host).ToArray();

    /// <summary>The weight of <paramref name="host"/> for <paramref name="key"/>: the first 128 bits of SHA-256 over the
    /// two ids, uniform and independent between hosts.</summary>
    public static UInt128 Weight(Id160 key, Id160 host)
    {
        Span<byte> pair = stackalloc byte[2 * Id160.Size];
        key.WriteTo(pair);
        host.WriteTo(pair[Id160.Size..]);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(pair, digest);
        return BinaryPrimitives.ReadUInt128BigEndian(digest);
    }

    /// <summary>Sync acknowledgement and share threshold: a majority of a replica set of <paramref name="replicas"/> hosts.</summary>
    public static int Majority(int replicas) => Math.Max(1, replicas) / 2 + 1;
}
