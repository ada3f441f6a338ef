// Compaction keeps what replicas still need: on the writer of a replicated volume, entries after the stream floor (the
// lowest lsn every replica acknowledged) stay streamable; once the floor moves up, their segments may be reclaimed.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class RetentionTests
{
    [Fact]
    public async Task A_replicated_volume_keeps_its_history_streamable_until_its_replicas_hold_it()
    {
        using var t = new TempLog();
        var size = 1 << 20;
        await using var s = t.Open(size: 24 << 20, segment: 256 << 10);
        var v = (await s.CreateVolumeAsync(size, VolumeMode.Sync, [s.HostId, Id160.Random(), Id160.Random()])).BaseId;
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < size; off += 64 << 10)
                await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, round * 1000 + off / 4096));

        // No replica has acknowledged anything: nothing a replica needs is reclaimed, the whole chain still streams.
        var kept = await s.CompactAsync();
        Assert.Equal(0, kept.SegmentsCompacted);
        await s.Streams.StreamAsync(v, 0, new MemoryStream(), follow: false);

        // Every replica holds everything: now the dead segments go.
        s.SetStreamFloor(v, s.GetVolume(v)!.Lsn);
        var reclaimed = await s.CompactAsync();
        Assert.True(reclaimed.SegmentsCompacted > 0, "nothing was compacted once the replicas held everything");
        await Assert.ThrowsAsync<VersionCompactedException>(() => s.Streams.StreamAsync(v, 0, new MemoryStream(), follow: false));
    }
}
