// Routes volume messages to their entity: shard id = the host the envelope names (one shard per host), entity id =
// the volume id. A volume message without an envelope names no host and is not routed.
using Akka.Cluster.Sharding;

namespace CloudFs.Actors.Volumes;

public sealed class VolumeMessageExtractor : IMessageExtractor
{
    public static readonly VolumeMessageExtractor Instance = new();

    public string? EntityId(object message) => message switch
    {
        VolumeEnvelope e => e.Message.VolumeId.ToString(),
        _ => null,
    };

    public object? EntityMessage(object message) => message is VolumeEnvelope e ? e.Message : message;

    public string? ShardId(object message) => message is VolumeEnvelope e ? e.ShardId : null;

    // Only remembered entities (off) and StartEntity ask by entity id alone; neither is used. Such a shard would name
    // no host, and a volume actor in it is never a writer (VolumeActor).
    public string ShardId(string entityId, object? messageHint = null) => messageHint is VolumeEnvelope e ? e.ShardId : entityId;
}
