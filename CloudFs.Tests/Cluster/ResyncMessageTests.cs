// A full resync's messages on the wire: the request and the pieces go through the binary serializer (entries copied
// once, never Hyperion), and a truncated piece frame is refused with a clear error.
using System.Runtime.Serialization;
using Akka.Configuration;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

public sealed class ResyncMessageTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config LocalConfig = ConfigurationFactory.ParseString("akka.actor.provider = local")
        .WithFallback(CloudFsConfig.Default());

    public ResyncMessageTests() : base(LocalConfig, "resync-message-tests") { }

    [Fact]
    public void Resync_requests_and_pieces_round_trip_through_the_binary_serializer()
    {
        var volume = Id160.Random();
        var transfer = Id160.Random();
        var request = new ReadResync(volume, transfer, 4096, 1 << 20, 493);
        var serializer = Sys.Serialization.FindSerializerFor(request);
        Assert.IsType<VolumeMessageSerializer>(serializer);
        Assert.Equal(request, Sys.Serialization.Deserialize(serializer.ToBinary(request), serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, request)));

        var data = new byte[70_000];
        Random.Shared.NextBytes(data);
        var piece = new ResyncPiece(transfer, 77, 8192, true, data);
        var pieceSerializer = Sys.Serialization.FindSerializerFor(piece);
        Assert.IsType<VolumeMessageSerializer>(pieceSerializer);
        var manifest = Akka.Serialization.Serialization.ManifestFor(pieceSerializer, piece);
        var bytes = pieceSerializer.ToBinary(piece);
        var back = Assert.IsType<ResyncPiece>(Sys.Serialization.Deserialize(bytes, pieceSerializer.Identifier, manifest));
        Assert.Equal((transfer, 77L, 8192L, true), (back.Transfer, back.Lsn, back.NextBlock, back.Complete));
        Assert.Equal(data, back.Data.ToArray());

        // A frame cut inside its fixed fields is refused, never read past its end.
        Assert.Throws<SerializationException>(() => Sys.Serialization.Deserialize(bytes.AsSpan(0, 20).ToArray(), pieceSerializer.Identifier, manifest));
        var badFlag = (byte[])bytes.Clone();
        badFlag[Id160.Size + 16] = 7;
        Assert.Throws<SerializationException>(() => Sys.Serialization.Deserialize(badFlag, pieceSerializer.Identifier, manifest));
    }
}
