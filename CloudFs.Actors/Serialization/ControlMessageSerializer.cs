// Hyperion restricted to the management protocol and control messages: only their types are known (written as an
// index), a type filter refuses every other type name in a stream, and anything else is refused in both directions.
using System.Collections.Frozen;
using System.Runtime.Serialization;
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using Hyperion;

namespace CloudFs.Actors.Serialization;

public sealed class ControlMessageSerializer(ExtendedActorSystem system) : Akka.Serialization.Serializer(system)
{
    public const int Id = 4611;

    /// <summary>The message types this serializer accepts as a whole message.</summary>
    public static readonly FrozenSet<Type> RootTypes = typeof(ControlMessageSerializer).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } &&
                    (typeof(IManagementMessage).IsAssignableFrom(t) || typeof(IControlMessage).IsAssignableFrom(t)))
        .ToFrozenSet();

    // Everything that may appear inside a message: the roots, their enums and the arrays Normalize produces.
    // Known types are written as an index (no type name); the order must be the same on both sides.
    internal static readonly Type[] KnownTypes = RootTypes
        .Concat(RootTypes.Select(t => t.MakeArrayType()))
        .Append(typeof(VolumeMode)).Append(typeof(string[]))
        .OrderBy(t => t.FullName, StringComparer.Ordinal)
        .ToArray();

    // Hyperion compiles a writer and a reader for every known type when its serializer is made: ~0.6 s of CPU. Akka makes
    // every serializer of an actor system anew each time an extension (cluster, sharding, singleton, persistence...) adds
    // its defaults to the config, 5 or 6 times per node start, and the tests start hundreds of nodes in one process. The
    // messages hold nothing of an actor system (no actor refs, which are the only values Akka's Hyperion serializer
    // resolves against its system, and which the type filter would refuse anyway), so one Hyperion serializer, made once
    // per process, serves every actor system in it. Its options are the ones Akka.Serialization.Hyperion's
    // HyperionSerializer gave it (ignoreISerializable on, no surrogate matches a known type): the bytes are the same.
    private static readonly Lazy<Serializer> Shared = new(() =>
    {
        Interlocked.Increment(ref _built);
        return new Serializer(new SerializerOptions(
            versionTolerance: false,
            preserveObjectReferences: false,
            surrogates: [],
            serializerFactories: null,
            knownTypes: KnownTypes,
            ignoreISerializable: true,
            packageNameOverrides: [],
            disallowUnsafeTypes: true,
            typeFilter: new KnownTypeFilter(KnownTypes)));
    });

    private static int _built;

    /// <summary>How many times this process made the Hyperion serializer (tests: once, however many actor systems).</summary>
    internal static int HyperionBuilt => Volatile.Read(ref _built);

    public override int Identifier => Id;

    /// <summary>The message's own type is written in the stream (as a known-type index), as Akka's Hyperion serializer does.</summary>
    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj)
    {
        if (!RootTypes.Contains(obj.GetType()))
            throw new SerializationException(
                $"the CloudFS control message serializer does not serialize {obj.GetType().FullName}: it carries only the management protocol and control messages");
        using var stream = new MemoryStream();
        Shared.Value.Serialize(Normalize(obj), stream);
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, Type? type)
    {
        object? result;
        try
        {
            using var stream = new MemoryStream(bytes);
            result = Shared.Value.Deserialize<object>(stream);
        }
        catch (Exception e)
        {
            throw new SerializationException($"Failed to deserialize instance of type {type}. {e.Message}", e);
        }
        if (result is null || !RootTypes.Contains(result.GetType()))
            throw new SerializationException(
                $"the CloudFS control message serializer refuses a message of type {result?.GetType().FullName ?? "null"}");
        return result;
    }

    // Collections become plain arrays so only known types go on the wire (a collection expression assigned to
    // IReadOnlyList<T> is a compiler-generated type that the other side must not be asked to load).
    private static object Normalize(object message) => message switch
    {
        VolumeCreated m => m with { Hosts = m.Hosts.ToArray() },
        VolumeSummary m => Normalize(m),
        VolumeList m => m with { Volumes = m.Volumes.Select(Normalize).ToArray() },
        VolumePage m => m with { Volumes = m.Volumes.Select(Normalize).ToArray(), FailedHosts = m.FailedHosts.ToArray() },
        VolumeLocation { Volume: { } v } m => m with { Volume = Normalize(v) },
        MemberLine m => Normalize(m),
        ClusterMembers m => m with { Members = m.Members.Select(Normalize).ToArray() },
        _ => message,
    };

    private static VolumeSummary Normalize(VolumeSummary m) => m with { Replicas = m.Replicas.ToArray(), Lag = m.Lag?.ToArray() };
    private static MemberLine Normalize(MemberLine m) => m with { Roles = m.Roles.ToArray() };

    /// <summary>Refuses every type name Hyperion would otherwise load from the stream.</summary>
    private sealed class KnownTypeFilter(IEnumerable<Type> allowed) : ITypeFilter
    {
        private readonly FrozenSet<string> _names = allowed
            .SelectMany(t => new[] { t.AssemblyQualifiedName!, $"{t.FullName}, {t.Assembly.GetName().Name}" })
            .ToFrozenSet(StringComparer.Ordinal);

        public bool IsAllowed(string typeName) => _names.Contains(typeName);
    }
}
