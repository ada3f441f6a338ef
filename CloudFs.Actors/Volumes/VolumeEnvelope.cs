// A volume message on its way through the shard region to the volume's actor on one host: the host whose shard it
// goes to travels with it, so routing needs no lookup (the sender resolved the primary: VolumeRoutes).
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

/// <param name="Host">The host whose volume actor takes the message (the volume's primary, as the sender knows it).</param>
/// <param name="Message">What the volume actor receives.</param>
public sealed record VolumeEnvelope(Id160 Host, IWithVolumeId Message) : IVolumeProtocolMessage
{
    public string ShardId => HostShard.Of(Host);
}
