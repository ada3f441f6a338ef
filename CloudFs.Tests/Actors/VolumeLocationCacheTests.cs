// The lookup of a volume this node does not hold: one question to placement per volume while its answer is fresh,
// asked again once it is not, and a volume that was not found is asked again at once.
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class VolumeLocationCacheTests
{
    private static readonly string Host = new('a', 40);
    private DateTime _now = new(2026, 12, 4, 0, 0, 0, DateTimeKind.Utc);
    private readonly List<Id160> _asked = [];
    private readonly Dictionary<Id160, VolumeSummary> _placement = [];

    private VolumeLocationCache Cache() => new((volume, _) =>
    {
        lock (_asked) _asked.Add(volume);
        return Task.FromResult<VolumeLocation?>(new VolumeLocation(_placement.GetValueOrDefault(volume), null));
    }, TimeSpan.FromSeconds(2), () => _now);

    private Id160 Volume(long size)
    {
        var id = Id160.Random();
        _placement[id] = new VolumeSummary(id.ToString(), size, VolumeMode.Sync, Host, [Host], id.ToString());
        return id;
    }

    [Fact]
    public async Task A_lookup_is_asked_once_while_fresh_and_again_after_it_expires()
    {
        var cache = Cache();
        var v = Volume(1 << 20);
        for (var i = 0; i < 100; i++)
        {
            var info = await cache.GetAsync(v, default);
            Assert.Equal((1L << 20, VolumeMode.Sync, false), (info!.SizeBytes, info.Mode, info.IsWritable));
            Assert.Equal([Id160.Parse(Host)], info.Replicas);
        }
        Assert.Single(_asked);

        // A resize (or a failover) is seen once the answer is no longer fresh.
        _placement[v] = _placement[v] with { Size = 2 << 20 };
        _now += TimeSpan.FromSeconds(2);
        Assert.Equal(2L << 20, (await cache.GetAsync(v, default))!.SizeBytes);
        Assert.Equal(2, _asked.Count);
    }

    [Fact]
    public async Task A_volume_that_is_not_found_is_not_remembered()
    {
        var cache = Cache();
        var v = Id160.Random();
        Assert.Null(await cache.GetAsync(v, default));
        _placement[v] = new VolumeSummary(v.ToString(), 512, VolumeMode.Async, null, [Host], v.ToString());
        Assert.NotNull(await cache.GetAsync(v, default));
        Assert.Equal(2, _asked.Count);
    }

    [Fact]
    public async Task Each_volume_is_looked_up_by_itself()
    {
        var cache = Cache();
        var volumes = Enumerable.Range(0, 50).Select(i => Volume(512 * (i + 1))).ToArray();
        foreach (var v in volumes) Assert.Equal(_placement[v].Size, (await cache.GetAsync(v, default))!.SizeBytes);
        Assert.Equal(volumes, _asked);
        Assert.Equal(50, cache.Count);
    }
}
