// What placement says about a volume's primary when none is live: a volume imported from another cluster (its one
// replica host was never a member here) has no primary coming, so the shard allocation does not wait for one and a
// read is served from the copy here; a volume whose primary is live is named with its address.
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class PrimaryLookupTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task An_imported_volume_has_no_primary_coming_and_is_read_from_the_copy_here()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var node = cluster[0];
        // A volume made on a host outside this cluster, streamed whole and imported.
        using var elsewhere = new TempLog();
        Id160 imported;
        var data = TempLog.Pattern(64 << 10, 7);
        byte[] stream;
        await using (var other = elsewhere.Open())
        {
            imported = (await other.CreateVolumeAsync(16 << 20, VolumeMode.Async, [other.HostId])).BaseId;
            await other.WriteAsync(imported, 0, data, durable: true);
            var ms = new MemoryStream();
            await other.Streams.StreamAsync(imported, 0, ms, follow: false);
            stream = ms.ToArray();
        }
        Assert.True((await node.Store.Streams.ApplyAsync(new MemoryStream(stream), import: true)).Ok);
        var created = Assert.IsType<VolumeCreated>(await node.Management.Ask<IManagementMessage>(new CreateVolume(1, 16 << 20, VolumeMode.Async), Timeout));

        var placement = node.System.ActorSelection("/user/" + PlacementActor.Name + "-proxy");
        var answer = await Eventually.Value(async () => await placement.Ask<PrimaryIs>(new WhereIsPrimary(created.VolumeId), Timeout) is { Address: not null } a ? a : null,
            Timeout, "placement names the created volume's primary");
        Assert.Equal((true, node.HostId.ToString()), (answer.Known, answer.HostId));
        // Placement has gathered this host's reports (the created volume's), so it knows the imported one too.
        var lookup = await placement.Ask<PrimaryIs>(new WhereIsPrimary(imported.ToString()), Timeout);
        Assert.Equal((false, null, null), (lookup.Known, lookup.HostId, lookup.Address));

        var back = new byte[data.Length];
        await node.Gateway.ReadAsync(imported, 0, back);
        Assert.Equal(data, back);
    }
}
