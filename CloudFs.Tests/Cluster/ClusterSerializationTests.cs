// The cluster's messages on the wire: control messages through the Hyperion adapter (keys and shares as byte
// arrays), replication's data plane through the binary serializer (entries copied once, never Hyperion).
using Akka.Configuration;
using CloudFs.Actors.Identity;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

public sealed class ClusterSerializationTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config LocalConfig = ConfigurationFactory.ParseString("akka.actor.provider = local")
        .WithFallback(CloudFsConfig.Default());

    public ClusterSerializationTests() : base(LocalConfig, "cluster-serialization-tests") { }

    private T RoundTrip<T>(T message, Type expectedSerializer) where T : notnull
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType(expectedSerializer, serializer);
        var bytes = serializer.ToBinary(message);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        return Assert.IsType<T>(Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest));
    }

    [Fact]
    public void Control_messages_round_trip_through_hyperion_with_their_byte_arrays()
    {
        var key = new byte[91];
        Random.Shared.NextBytes(key);
        var d = RoundTrip(new HostDescription(Id160.Random().ToString(), "akka.tcp://cloudfs@127.0.0.1:4053", 123), typeof(ControlMessageSerializer));
        Assert.Equal(123, d.FreeBytes);

        var report = new VolumeReport(Id160.Random().ToString(), 1 << 20, VolumeMode.Sync, [Id160.Random().ToString(), Id160.Random().ToString()], 7,
            Id160.Random().ToString(), true, 2, null);
        var reports = RoundTrip(new VolumeReports(Id160.Random().ToString(), [report]), typeof(ControlMessageSerializer));
        Assert.Equal(report.Replicas, Assert.Single(reports.Volumes).Replicas);
        Assert.Equal(report with { Replicas = reports.Volumes[0].Replicas }, reports.Volumes[0]);

        var share = new ShareDto(Id160.Random().ToString(), Id160.Random().ToString(), Id160.Random().ToString(), key);
        var take = RoundTrip(new TakeOverVolume(share.Volume, [share], [share.Host]), typeof(ControlMessageSerializer));
        Assert.Equal(key, Assert.Single(take.Shares).Payload);
        Assert.Equal(new PrimaryIs("v", true, "h", "a"), RoundTrip(new PrimaryIs("v", true, "h", "a"), typeof(ControlMessageSerializer)));
        Assert.IsType<Fenced>(RoundTrip(new Fenced("h", null), typeof(ControlMessageSerializer)));
        Assert.Equal(new FeedEndpoint("127.0.0.2", 40411), RoundTrip(new FeedEndpoint("127.0.0.2", 40411), typeof(ControlMessageSerializer)));
        Assert.IsType<WhereIsFeed>(RoundTrip(WhereIsFeed.Instance, typeof(ControlMessageSerializer)));

        // Share requests name a host, never a key: the key is the one that host proved.
        Assert.Equal(new RequestShare("v", "h"), RoundTrip(new RequestShare("v", "h"), typeof(ControlMessageSerializer)));
        Assert.Equal(new ReleaseShare("v", "h"), RoundTrip(new ReleaseShare("v", "h"), typeof(ControlMessageSerializer)));
        var nonce = new byte[32];
        Random.Shared.NextBytes(nonce);
        Assert.Equal(nonce, RoundTrip(new ProveIdentity("h", nonce), typeof(ControlMessageSerializer)).Nonce);
        var signed = RoundTrip(new IdentityProof("h", "akka.tcp://cloudfs@127.0.0.1:4053", key, nonce, key), typeof(ControlMessageSerializer));
        Assert.Equal(key, signed.SealingKey);
        Assert.Equal(nonce, signed.Certificate);
        Assert.Equal(key, signed.Signature);
        var plain = RoundTrip(new IdentityProof("h", "akka.tcp://cloudfs@127.0.0.1:4053", key, null, null), typeof(ControlMessageSerializer));
        Assert.Null(plain.Certificate);
        Assert.Null(plain.Signature);
    }

    [Fact]
    public void Replication_data_messages_round_trip_through_the_binary_serializer()
    {
        var volume = Id160.Random();
        var host = Id160.Random();
        Assert.Equal(new ReplicaAck(volume, host, 7, 42, 40), RoundTrip(new ReplicaAck(volume, host, 7, 42, 40), typeof(VolumeMessageSerializer)));
        Assert.Equal(new ReplicaFeedEnded(volume, host, 7), RoundTrip(new ReplicaFeedEnded(volume, host, 7), typeof(VolumeMessageSerializer)));
    }

    [Fact]
    public void Lifecycle_messages_round_trip_and_an_unknown_change_is_refused()
    {
        var volume = Id160.Random();
        var resize = new CloudFs.Actors.Volumes.Commands.ChangeLifecycle(volume, CloudFs.Actors.Volumes.Commands.LifecycleChange.Resize, 1L << 40, AllowShrink: true);
        Assert.Equal(resize, RoundTrip(resize, typeof(VolumeMessageSerializer)));
        var trash = new CloudFs.Actors.Volumes.Commands.ChangeLifecycle(volume, CloudFs.Actors.Volumes.Commands.LifecycleChange.Trash);
        Assert.Equal(trash, RoundTrip(trash, typeof(VolumeMessageSerializer)));
        var serializer = Sys.Serialization.FindSerializerFor(trash);
        var bytes = serializer.ToBinary(trash);
        bytes[Id160.Size] = 99;
        Assert.ThrowsAny<Exception>(() => Sys.Serialization.Deserialize(bytes, serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, trash)));
        var failure = new CloudFs.Actors.Volumes.VolumeFailure(CloudFs.Actors.Volumes.VolumeErrorKind.VolumeInTrash, volume, 0, 0, "in the trash");
        Assert.IsType<VolumeInTrashException>(RoundTrip(failure, typeof(VolumeMessageSerializer)).ToException());

        var report = new VolumeReport(volume.ToString(), 1 << 20, VolumeMode.Sync, [], 3, volume.ToString(), true, 0, null, 0, "db", 1_700_000_000_000);
        Assert.Equal(("db", 1_700_000_000_000L), RoundTrip(report, typeof(ControlMessageSerializer)) is var r ? (r.Name, r.TrashedAtUnixMs) : default);
        Assert.Equal(new PurgeLocalVolume("v"), RoundTrip(new PurgeLocalVolume("v"), typeof(ControlMessageSerializer)));
        Assert.Equal(new PlaceVolume(3, 1 << 20, VolumeMode.Async, "db"), RoundTrip(new PlaceVolume(3, 1 << 20, VolumeMode.Async, "db"), typeof(ControlMessageSerializer)));

    }
}
