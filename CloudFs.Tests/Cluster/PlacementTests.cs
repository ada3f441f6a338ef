// Placement by XOR distance (deterministic, spread, little movement) and the majority rule.
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

public sealed class PlacementTests
{
    // Seeded: the spread of ten random host ids under XOR varies from draw to draw; the test must not.
    private static readonly Random Seeded = new(4242);
    private static readonly Id160[] Hosts = Enumerable.Range(0, 10).Select(_ => Draw()).ToArray();

    private static Id160 Draw()
    {
        var b = new byte[Id160.Size];
        lock (Seeded) Seeded.NextBytes(b);
        return new Id160(b);
    }

    [Fact]
    public void The_replica_set_is_the_nearest_hosts_by_xor_nearest_first_and_the_same_every_time()
    {
        var key = Id160.Random();
        var set = Placement.Nearest(key, Hosts, 3);
        Assert.Equal(3, set.Count);
        Assert.Equal(set, Placement.Nearest(key, Hosts.Reverse(), 3));
        var rest = Hosts.Except(set).ToArray();
        Assert.All(rest, h => Assert.True(h.Xor(key).CompareTo(set[^1].Xor(key)) > 0));
        Assert.True(set[0].Xor(key).CompareTo(set[1].Xor(key)) < 0 && set[1].Xor(key).CompareTo(set[2].Xor(key)) < 0);
    }

    [Fact]
    public void Volumes_spread_evenly_and_a_host_leaving_moves_only_its_own()
    {
        var keys = Enumerable.Range(0, 6000).Select(_ => Draw()).ToArray();
        var load = Hosts.ToDictionary(h => h, _ => 0);
        foreach (var k in keys) foreach (var h in Placement.Nearest(k, Hosts, 3)) load[h]++;
        // 18000 placements over 10 hosts: 1800 each on average. XOR spreads by the hosts' id gaps, so not exactly
        // evenly; every host still takes a real share and none takes most.
        Assert.All(load.Values, n => Assert.InRange(n, 450, 4500));

        var gone = Hosts[3];
        var without = Hosts.Where(h => h != gone).ToArray();
        foreach (var k in keys)
        {
            var before = Placement.Nearest(k, Hosts, 3);
            var after = Placement.Nearest(k, without, 3);
            // Sets without the departed host do not change; sets with it change by that host only.
            Assert.Equal(before.Where(h => h != gone).Count(), before.Intersect(after).Count());
        }
    }

    [Fact]
    public void A_majority_of_the_replica_set()
    {
        Assert.Equal([1, 2, 2, 3, 3], new[] { 1, 2, 3, 4, 5 }.Select(Placement.Majority));
    }
}
