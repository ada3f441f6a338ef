// Routes volume messages to their entity: entity id = shard id = the volume id (one shard per volume), so the
// allocation strategy can place each volume on a host that holds it.
using Akka.Cluster.Sharding;

namespace CloudFs.Actors.Volumes;

public sealed class VolumeMessageExtractor : IMessageExtractor
{
    public static readonly VolumeMessageExtractor Instance = new();

    public string? EntityId(object message) => message switch
    {
        IWithVolumeId m => m.VolumeId.ToString(),
        _ => null,
    };

    public object? EntityMessage(object message) => message;

    public string? ShardId(object message) => EntityId(message);

    public string ShardId(string entityId, object? messageHint = null) => entityId;
}
