// Akka.Serialization.Hyperion restricted to the management protocol and control messages: only their types are
// known (written as an index), a type filter refuses every other type name in a stream, and anything else is refused
// in both directions.
using System.Collections.Frozen;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using Hyperion;

namespace CloudFs.Actors.Serialization;

public sealed class ControlMessageSerializer(ExtendedActorSystem system) : HyperionSerializer(system, Restricted)
{
    public const int Id = 4611;

    /// <summary>The message types this serializer accepts as a whole message.</summary>
    public static readonly FrozenSet<Type> RootTypes = typeof(ControlMessageSerializer).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } &&
                    (typeof(IManagementMessage).IsAssignableFrom(t) || typeof(IControlMessage).IsAssignableFrom(t)))
        .ToFrozenSet();

    // Everything that may appear inside a message: the roots, their enums and the arrays Normalize produces.
    // Known types are written as an index (no type name); the order must be the same on both sides.
    private static readonly Type[] KnownTypes = RootTypes
        .Concat(RootTypes.Select(t => t.MakeArrayType()))
        .Append(typeof(VolumeMode)).Append(typeof(string[]))
        .OrderBy(t => t.FullName, StringComparer.Ordinal)
        .ToArray();

    private static readonly HyperionSerializerSettings Restricted = new(
        preserveObjectReferences: false,
        versionTolerance: false,
        knownTypesProvider: typeof(ControlMessageTypes),
        packageNameOverrides: [],
        surrogates: [],
        disallowUnsafeType: true,
        typeFilter: new KnownTypeFilter(KnownTypes));

    public override int Identifier => Id;

    public override byte[] ToBinary(object obj)
    {
        if (!RootTypes.Contains(obj.GetType()))
            throw new SerializationException(
                $"the CloudFS control message serializer does not serialize {obj.GetType().FullName}: it carries only the management protocol and control messages");
        return base.ToBinary(Normalize(obj));
    }

    public override object FromBinary(byte[] bytes, Type? type)
    {
        var result = base.FromBinary(bytes, type);
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

    /// <summary>The known types, for Hyperion (it makes one with its default constructor).</summary>
    private sealed class ControlMessageTypes : IKnownTypesProvider
    {
        public IEnumerable<Type> GetKnownTypes() => KnownTypes;
    }

    /// <summary>Refuses every type name Hyperion would otherwise load from the stream.</summary>
    private sealed class KnownTypeFilter(IEnumerable<Type> allowed) : ITypeFilter
    {
        private readonly FrozenSet<string> _names = allowed
            .SelectMany(t => new[] { t.AssemblyQualifiedName!, $"{t.FullName}, {t.Assembly.GetName().Name}" })
            .ToFrozenSet(StringComparer.Ordinal);

        public bool IsAllowed(string typeName) => _names.Contains(typeName);
    }
}
