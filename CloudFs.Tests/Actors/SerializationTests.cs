// Round trips of the data-plane binary serializer and the Hyperion adapter, as bound by hocon/cloudfs.conf.
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.Actors.Serialization;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;
using CloudFs.Tests.Engine;

namespace CloudFs.Tests.Actors;

public sealed class SerializationTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config LocalConfig = ConfigurationFactory.ParseString("akka.actor.provider = local")
        .WithFallback(CloudFsConfig.Default());

    public SerializationTests() : base(LocalConfig, "serialization-tests") { }

    private object RoundTrip(object message, Type expectedSerializer)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType(expectedSerializer, serializer);
        var bytes = serializer.ToBinary(message);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        return Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);
    }

    [Fact]
    public void Write_round_trips_with_its_data()
    {
        var volume = Id160.Random();
        var data = new byte[4096];
        Random.Shared.NextBytes(data);
        var back = Assert.IsType<Write>(RoundTrip(new Write(volume, 8192, data, Fua: true) { RequestId = -77, Attachment = (3L << 32) | 9 }, typeof(VolumeMessageSerializer)));
        Assert.Equal(volume, back.VolumeId);
        Assert.Equal(8192, back.Offset);
        Assert.True(back.Fua);
        Assert.Equal(-77, back.RequestId);
        Assert.Equal((3L << 32) | 9, back.Attachment);
        Assert.Equal(data, back.Data.ToArray());
    }

    [Fact]
    public void A_volume_envelope_round_trips_with_its_host_and_message()
    {
        var volume = Id160.Random();
        var host = Id160.Random();
        var data = new byte[4096];
        Random.Shared.NextBytes(data);
        var write = Assert.IsType<VolumeEnvelope>(RoundTrip(new VolumeEnvelope(host, new Write(volume, 8192, data.AsMemory(), Fua: true) { RequestId = 5, Attachment = 6 }),
            typeof(VolumeMessageSerializer)));
        Assert.Equal(host, write.Host);
        var inner = Assert.IsType<Write>(write.Message);
        Assert.Equal((volume, 8192L, true, 5L, 6L), (inner.VolumeId, inner.Offset, inner.Fua, inner.RequestId, inner.Attachment));
        Assert.Equal(data, inner.Data.ToArray());
        // The write's data is copied once: the envelope is the host id and the write's own bytes.
        var serializer = Sys.Serialization.FindSerializerFor(new Flush(Id160.Zero));
        Assert.Equal(2 * Id160.Size + 25 + data.Length, serializer.ToBinary(new VolumeEnvelope(host, new Write(volume, 0, data, false))).Length);
        foreach (IWithVolumeId message in new IWithVolumeId[] { new Flush(volume), new Read(volume, 1024, 65536), new ChangeLifecycle(volume, LifecycleChange.Resize, 1 << 30, true) })
            Assert.Equal(new VolumeEnvelope(host, message), RoundTrip(new VolumeEnvelope(host, message), typeof(VolumeMessageSerializer)));
        Assert.Throws<SerializationException>(() => ((SerializerWithStringManifest)serializer).FromBinary(new byte[3], "EF"));
    }

    [Fact]
    public void A_volume_envelope_carries_a_control_message_to_the_writer_through_its_own_serializer()
    {
        var host = Id160.Random();
        var acquire = new CloudFs.Actors.Volumes.Attachments.AcquireAttachment(Id160.Random().ToString(), "client 127.0.0.9 via 127.0.0.1", (7L << 32) | 1);
        var back = Assert.IsType<VolumeEnvelope>(RoundTrip(new VolumeEnvelope(host, acquire), typeof(VolumeMessageSerializer)));
        Assert.Equal(host, back.Host);
        Assert.Equal(acquire, back.Message);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(back);
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[Id160.Size + 1], "E#x:y"));
    }

    [Fact]
    public void Write_of_a_slice_carries_only_the_slice()
    {
        var buffer = new byte[2048];
        buffer.AsSpan(512, 1024).Fill(7);
        var serializer = Sys.Serialization.FindSerializerFor(new Flush(Id160.Zero));
        var bytes = serializer.ToBinary(new Write(Id160.Zero, 0, buffer.AsMemory(512, 1024), false));
        Assert.Equal(Id160.Size + 25 + 1024, bytes.Length);
        var back = (Write)((SerializerWithStringManifest)serializer).FromBinary(bytes, "W");
        Assert.All(back.Data.ToArray(), b => Assert.Equal(7, b));
    }

    [Fact]
    public void Every_volume_message_round_trips()
    {
        var volume = Id160.Random();
        object[] messages =
        [
            new WriteZeroes(volume, 512, 1L << 33, false),
            new WriteZeroes(volume, 0, 4096, true) { RequestId = long.MaxValue },
            new WriteZeroes(volume, 0, 4096, true) { RequestId = 1, Attachment = long.MaxValue },
            new Flush(volume),
            new Flush(volume) { Attachment = 1L << 40 },
            new VolumeAck(42),
            new Read(volume, 1024, 65536),
            new Map(volume, 0, 1L << 30),
            new MapResult([new MappedRange(0, 4096, true), new MappedRange(4096, 1L << 20, false)]),
            new GetVolumeStatus(volume),
            new VolumeStatus(17, true, true, 0),
        ];
        foreach (var message in messages)
        {
            var back = RoundTrip(message, typeof(VolumeMessageSerializer));
            if (message is MapResult map) Assert.Equal(map.Ranges, ((MapResult)back).Ranges);
            else Assert.Equal(message, back);
        }
    }

    [Fact]
    public void ReadResult_round_trips_and_a_whole_array_is_not_copied()
    {
        var data = new byte[8192];
        Random.Shared.NextBytes(data);
        var serializer = Sys.Serialization.FindSerializerFor(new ReadResult(data));
        Assert.Same(data, serializer.ToBinary(new ReadResult(data)));
        var back = Assert.IsType<ReadResult>(RoundTrip(new ReadResult(data), typeof(VolumeMessageSerializer)));
        Assert.Equal(data, back.Data.ToArray());
    }

    [Fact]
    public void VolumeFailure_round_trips_to_the_same_engine_exception()
    {
        var volume = Id160.Random();
        var corrupt = VolumeFailure.From(volume, new DataCorruptionException(volume, 4096, 512, "crc mismatch"));
        var back = Assert.IsType<VolumeFailure>(RoundTrip(corrupt, typeof(VolumeMessageSerializer)));
        Assert.Null(back.Local);
        var e = Assert.IsType<DataCorruptionException>(back.ToException());
        Assert.Equal((volume, 4096L, 512L), (e.Volume, e.Offset, e.Length));

        var full = Assert.IsType<VolumeFailure>(RoundTrip(VolumeFailure.From(volume, new LogFullException("the log is full")), typeof(VolumeMessageSerializer)));
        Assert.IsType<LogFullException>(full.ToException());
        Assert.Equal("the log is full", full.ToException().Message);
        var notPrimary = Assert.IsType<VolumeFailure>(RoundTrip(VolumeFailure.From(volume, new NotPrimaryException(volume)), typeof(VolumeMessageSerializer)));
        Assert.Equal(volume, Assert.IsType<NotPrimaryException>(notPrimary.ToException()).Volume);
    }

    [Fact]
    public void ChangedSince_and_its_answers_round_trip_with_the_versions_named()
    {
        var (volume, since, until) = (Id160.Random(), Id160.Random(), Id160.Random());
        foreach (var query in new[] { new ChangedSince(volume, since, until, 4096, 1L << 30), new ChangedSince(volume, since, null, 0, 0) })
            Assert.Equal(query, RoundTrip(query, typeof(VolumeMessageSerializer)));
        var result = Assert.IsType<ChangedSinceResult>(RoundTrip(new ChangedSinceResult([new ChangedRange(0, 512), new ChangedRange(1L << 40, 4096)])
            { To = until, ToSizeBytes = 3L << 40 }, typeof(VolumeMessageSerializer)));
        Assert.Equal([new ChangedRange(0, 512), new ChangedRange(1L << 40, 4096)], result.Ranges);
        // The version the ranges go up to (the current one resolved) and its size travel with them.
        Assert.Equal((until, 3L << 40), (result.To, result.ToSizeBytes));
        // From a node that predates them: the ranges alone, no version.
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(result);
        var old = serializer.ToBinary(new ChangedSinceResult([new ChangedRange(512, 1024)]))[..(4 + 16)];
        var fromOld = Assert.IsType<ChangedSinceResult>(serializer.FromBinary(old, serializer.Manifest(result)));
        Assert.Equal([new ChangedRange(512, 1024)], fromOld.Ranges);
        Assert.Equal(Id160.Zero, fromOld.To);

        var unknown = Assert.IsType<VolumeFailure>(RoundTrip(VolumeFailure.From(volume, new UnknownVersionException(since)), typeof(VolumeMessageSerializer)));
        Assert.Equal(since, Assert.IsType<UnknownVersionException>(unknown.ToException()).Version);
        var gone = new VersionCompactedException(since, until);
        var compacted = Assert.IsType<VolumeFailure>(RoundTrip(VolumeFailure.From(volume, gone), typeof(VolumeMessageSerializer)));
        var e = Assert.IsType<VersionCompactedException>(compacted.ToException());
        Assert.Equal((since, gone.Message), (e.Version, e.Message));
    }

    [Fact]
    public void VersionSize_and_its_answer_round_trip()
    {
        var query = new VersionSize(Id160.Random(), Id160.Random());
        Assert.Equal(query, RoundTrip(query, typeof(VolumeMessageSerializer)));
        Assert.Equal(new VersionSizeResult(1L << 40), RoundTrip(new VersionSizeResult(1L << 40), typeof(VolumeMessageSerializer)));
    }

    [Fact]
    public void Volume_serializer_refuses_unknown_types_and_malformed_bytes()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(new Flush(Id160.Zero));
        Assert.Throws<SerializationException>(() => serializer.ToBinary("not a volume message"));
        Assert.Throws<SerializationException>(() => serializer.Manifest(42));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[20], "nope"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[5], "W"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[21], "F"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([1, 0, 0, 0, 0, 0], "MR"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[Id160.Size + 16], "W"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[Id160.Size + 24], "Z"));
        var badFlag = new byte[Id160.Size + 17];
        badFlag[Id160.Size + 8] = 9;
        Assert.Throws<SerializationException>(() => serializer.FromBinary(badFlag, "W"));
    }

    [Fact]
    public void Management_messages_round_trip_through_hyperion()
    {
        object[] messages =
        [
            new CreateVolume(3, 8L << 30, VolumeMode.Sync),
            new ListVolumes(),
            new ShowCluster(),
            new GetVolume(Id160.Random().ToString()),
            new ClusterCommand("join", "127.0.0.2:4053"),
            new ShardingCommand("stats"),
            new CommandOutput("hello\n"),
            new CommandFailed("only 1 host(s) found"),
            GetHostAddress.Instance,
        ];
        foreach (var message in messages)
            Assert.Equal(message, RoundTrip(message, typeof(ControlMessageSerializer)));
    }

    [Fact]
    public void Management_messages_with_lists_round_trip_whatever_list_type_was_used()
    {
        List<string> replicas = ["a", "b"];
        var list = new VolumeList([new VolumeSummary("id", 512, VolumeMode.Async, null, replicas, "v")]);
        var back = Assert.IsType<VolumeList>(RoundTrip(list, typeof(ControlMessageSerializer)));
        var summary = Assert.Single(back.Volumes);
        Assert.Equal(["a", "b"], summary.Replicas);
        Assert.Null(summary.Primary);

        var created = Assert.IsType<VolumeCreated>(RoundTrip(new VolumeCreated("x", [new HostAddress("h", "akka.tcp://cloudfs@127.0.0.1:4053")]), typeof(ControlMessageSerializer)));
        Assert.Equal("h", Assert.Single(created.Hosts).HostId);

        var members = new ClusterMembers([new MemberLine("addr", ["host-1"], "Up", "Reachable", "h")], "addr", "addr");
        var membersBack = Assert.IsType<ClusterMembers>(RoundTrip(members, typeof(ControlMessageSerializer)));
        Assert.Equal(["host-1"], Assert.Single(membersBack.Members).Roles);
    }

    [Fact]
    public void Repair_messages_round_trip_with_their_blocks()
    {
        var volume = Id160.Random();
        var version = Id160.Random();
        var ask = new ReadForRepair(volume, 1L << 33, 4096, 77, version);
        Assert.Equal(ask, RoundTrip(ask, typeof(VolumeMessageSerializer)));
        var data = TempLog.Pattern(4096, 5);
        var copy = Assert.IsType<ReplicaCopy>(RoundTrip(new ReplicaCopy(78, version, true, 76, data), typeof(VolumeMessageSerializer)));
        Assert.Equal((78L, version, true, 76L), (copy.HeadLsn, copy.HeadVersion, copy.HoldsAskerHead, copy.NewestSourceLsn));
        Assert.Equal(data, copy.Data.ToArray());
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(ask);
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[10], "FC"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[2 * Id160.Size + 19], "FR"));
    }

    [Fact]
    public void Integrity_messages_round_trip_through_hyperion()
    {
        var scrubbed = new HostScrubbed("h", 1 << 20, 2 << 20, 1, 0.5, [new HostScrubRange("v", 512, 512, true, "log block 9 fails its checksum")]);
        var back = Assert.IsType<HostScrubbed>(RoundTrip(scrubbed, typeof(ControlMessageSerializer)));
        Assert.Equal(scrubbed.Ranges, back.Ranges);
        var digested = Assert.IsType<VolumeDigested>(RoundTrip(new VolumeDigested("h", 3, "v", 1 << 20, new byte[40], [0, 1]), typeof(ControlMessageSerializer)));
        Assert.Equal([0, 1], digested.Unreadable);
        var report = new ScrubReport([new ScrubHostLine("h", 1, 0, 1, null)], [new ScrubRangeLine("v", "h", 0, 512, "damaged", "r")]);
        var reportBack = Assert.IsType<ScrubReport>(RoundTrip(report, typeof(ControlMessageSerializer)));
        Assert.False(reportBack.Clean);
        var verify = new VerifyReport("v", [new VerifyReplicaLine("h", 3, "x", "equal", true)], true, 3, "x", 1 << 20, 64, [new VerifyRangeLine(0, 1 << 20, ["h"], "different content")], null);
        Assert.Equal(["h"], Assert.Single(Assert.IsType<VerifyReport>(RoundTrip(verify, typeof(ControlMessageSerializer))).Differences).Hosts);
        foreach (var m in new object[] { new ScrubHost(null), new ScrubHost("v"), new DescribeReplica("v"), new ReplicaState("h", true, 3, "x", 512),
                     new DigestVolume("v", 1 << 20, 3, 5000), new ScrubVolumes(null), new VerifyVolume("v", true) })
            Assert.Equal(m, RoundTrip(m, typeof(ControlMessageSerializer)));
    }

    private sealed record NotAllowed(string Text);

    [Fact]
    public void The_control_message_serializer_refuses_types_outside_the_protocol()
    {
        var adapter = new ControlMessageSerializer((ExtendedActorSystem)Sys);
        var e = Assert.Throws<SerializationException>(() => adapter.ToBinary(new NotAllowed("x")));
        Assert.Contains(typeof(NotAllowed).FullName!, e.Message);

        // A stream naming an arbitrary type (what a forged frame would do) is refused before anything is built.
        var plain = new Hyperion.Serializer();
        using var forged = new MemoryStream();
        plain.Serialize(new NotAllowed("x"), forged);
        Assert.Throws<SerializationException>(() => adapter.FromBinary(forged.ToArray(), null));
        // Allowed types named in the stream (not by index) pass the filter ...
        using var named = new MemoryStream();
        plain.Serialize(new VolumeCreated("x", new[] { new HostAddress("h", "a") }), named);
        Assert.Equal("h", Assert.Single(Assert.IsType<VolumeCreated>(adapter.FromBinary(named.ToArray(), null)).Hosts).HostId);
        // ... but an allowed message carrying a type outside the list inside it is refused (the type filter).
        using var nested = new MemoryStream();
        plain.Serialize(new VolumeCreated("x", new List<HostAddress> { new("h", "a") }), nested);
        Assert.Throws<SerializationException>(() => adapter.FromBinary(nested.ToArray(), null));
        Assert.Throws<SerializationException>(() => adapter.FromBinary([0xff, 0x01, 0x02], null));
    }

    // The control messages the tests above carry, one of each shape (lists, nested records, enums, nulls).
    private static object[] ControlSamples() =>
    [
        new CreateVolume(3, 8L << 30, VolumeMode.Sync),
        new ClusterCommand("join", "127.0.0.2:4053"),
        new CommandFailed("only 1 host(s) found"),
        GetHostAddress.Instance,
        new VolumeList([new VolumeSummary("id", 512, VolumeMode.Async, null, ["a", "b"], "v")]),
        new VolumeCreated("x", [new HostAddress("h", "akka.tcp://cloudfs@127.0.0.1:4053")]),
        new HostScrubbed("h", 1 << 20, 2 << 20, 1, 0.5, [new HostScrubRange("v", 512, 512, true, "log block 9 fails its checksum")]),
        new VolumeDigested("h", 3, "v", 1 << 20, new byte[40], [0, 1]),
    ];

    /// <summary>Hyperion's settings as Akka.Serialization.Hyperion's HyperionSerializer was given them before the control
    /// serializer made its Hyperion serializer itself: what a member of an earlier build writes and reads.</summary>
    private sealed class EarlierKnownTypes : IKnownTypesProvider
    {
        public IEnumerable<Type> GetKnownTypes() => ControlMessageSerializer.KnownTypes;
    }

    private sealed class AnyType : Hyperion.ITypeFilter
    {
        public bool IsAllowed(string typeName) => true;
    }

    [Fact]
    public void The_control_message_serializer_writes_and_reads_what_the_earlier_akka_hyperion_serializer_did()
    {
        var earlier = new HyperionSerializer((ExtendedActorSystem)Sys, new HyperionSerializerSettings(preserveObjectReferences: false,
            versionTolerance: false, knownTypesProvider: typeof(EarlierKnownTypes), packageNameOverrides: [], surrogates: [],
            disallowUnsafeType: true, typeFilter: new AnyType()));
        var adapter = new ControlMessageSerializer((ExtendedActorSystem)Sys);
        foreach (var message in ControlSamples())
        {
            var bytes = adapter.ToBinary(message);
            // The adapter writes lists as arrays (its Normalize): compare with what the earlier build wrote for the same.
            var written = adapter.FromBinary(bytes, null);
            Assert.Equal(earlier.ToBinary(written), bytes);
            Assert.Equal(bytes, adapter.ToBinary(earlier.FromBinary(bytes, null)));
            Assert.Equal(bytes, adapter.ToBinary(adapter.FromBinary(earlier.ToBinary(written), null)));
        }
    }

    [Fact]
    public void One_hyperion_serializer_serves_every_actor_system_of_the_process_whatever_reloads_their_config()
    {
        // Every extension's reference config reloads the serializers of its system (Akka's Settings.InjectTopLevelFallback):
        // the control serializer's Hyperion code is generated once per process all the same, not per system or reload.
        using var other = ActorSystem.Create("serialization-tests-other", LocalConfig);
        foreach (var system in new[] { Sys, other })
        {
            system.Settings.InjectTopLevelFallback(Akka.Cluster.Sharding.ClusterSharding.DefaultConfig());
            system.Settings.InjectTopLevelFallback(Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig());
        }
        foreach (var message in ControlSamples())
        {
            var from = Sys.Serialization.FindSerializerFor(message);
            var to = other.Serialization.FindSerializerFor(message);
            Assert.IsType<ControlMessageSerializer>(from);
            Assert.NotSame(from, to);
            Assert.Equal(from.ToBinary(message), to.ToBinary(to.FromBinary(from.ToBinary(message), null)));
        }
        Assert.Equal(1, ControlMessageSerializer.HyperionBuilt);
    }
}
