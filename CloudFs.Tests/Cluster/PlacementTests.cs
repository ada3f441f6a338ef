// Placement by rendezvous weight (deterministic, even, little movement) and the majority rule.
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

public sealed class PlacementTests
{
    // Seeded: the test must not depend on a draw.
    private static readonly Random Seeded = new(4242);
    private static readonly Id160[] Hosts = Enumerable.Range(0, 16).Select(_ => Draw()).ToArray();

    private static Id160 Draw()
    {
        var b = new byte[Id160.Size];
        lock (Seeded) Seeded.NextBytes(b);
        return new Id160(b);
    }

    [Fact]
    public void The_replica_set_is_the_hosts_of_highest_weight_highest_first_and_the_same_every_time()
    {
        var key = Id160.Random();
        var set = Placement.Choose(key, Hosts, 3);
        Assert.Equal(3, set.Count);
        Assert.Equal(set, Placement.Choose(key, Hosts.Reverse(), 3));
        var rest = Hosts.Except(set).ToArray();
        Assert.All(rest, h => Assert.True(Placement.Weight(key, h) < Placement.Weight(key, set[^1])));
        Assert.True(Placement.Weight(key, set[0]) > Placement.Weight(key, set[1]) && Placement.Weight(key, set[1]) > Placement.Weight(key, set[2]));
    }

    [Fact]
    public void Primaries_and_replicas_spread_evenly_whatever_the_host_ids_and_a_host_leaving_moves_only_its_own()
    {
        // Host ids that share long prefixes (the worst case of XOR distance, which gave hosts in a clump a sliver of
        // the keys each) take their share like any other host.
        var clumped = Hosts.Take(12).Concat(Enumerable.Range(0, 4).Select(i => { var b = Hosts[0].ToArray(); b[^1] ^= (byte)(i + 1); return new Id160(b); })).ToArray();
        var keys = Enumerable.Range(0, 8000).Select(_ => Draw()).ToArray();
        var primaries = clumped.ToDictionary(h => h, _ => 0);
        var replicas = clumped.ToDictionary(h => h, _ => 0);
        foreach (var k in keys)
        {
            var set = Placement.Choose(k, clumped, 3);
            primaries[set[0]]++;
            foreach (var h in set) replicas[h]++;
        }
        // 8,000 primaries over 16 hosts: 500 each on average, a standard deviation of ~22; 1,500 replicas each.
        Assert.All(primaries.Values, n => Assert.InRange(n, 400, 600));
        Assert.All(replicas.Values, n => Assert.InRange(n, 1300, 1700));

        var gone = clumped[3];
        var without = clumped.Where(h => h != gone).ToArray();
        foreach (var k in keys)
        {
            var before = Placement.Choose(k, clumped, 3);
            var after = Placement.Choose(k, without, 3);
            // Sets without the departed host do not change; sets with it change by that host only.
            Assert.Equal(before.Where(h => h != gone).Count(), before.Intersect(after).Count());
            if (!before.Contains(gone)) Assert.Equal(before, after);
        }
    }

    [Fact]
    public void A_majority_of_the_replica_set()
    {
        Assert.Equal([1, 2, 2, 3, 3], new[] { 1, 2, 3, 4, 5 }.Select(Placement.Majority));
    }
}
