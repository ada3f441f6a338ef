// One running node: the ActorSystem (cluster member), the pinned log store, sharded volumes and the
// management actor. The host's front ends (NBD, HTTP, CLI) talk to it through Gateway and Management.
using Akka.Actor;
using CloudFs.Actors.Gateway;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

public sealed class CloudFsNode : IAsyncDisposable
{
    /// <summary>Opens the device, starts the ActorSystem "cloudfs", joins the seeds (or itself), starts sharding and management.</summary>
    public static Task<CloudFsNode> StartAsync(NodeOptions options, CancellationToken ct = default) => throw new NotImplementedException();

    public ActorSystem System => throw new NotImplementedException();
    public LogStore Store => throw new NotImplementedException();
    public Id160 HostId => throw new NotImplementedException();
    public NodeOptions Options => throw new NotImplementedException();
    public IVolumeGateway Gateway => throw new NotImplementedException();
    /// <summary>The management actor; answers <see cref="Management.IManagementMessage"/> requests.</summary>
    public IActorRef Management => throw new NotImplementedException();

    /// <summary>Leaves the cluster, writes a checkpoint, releases the device.</summary>
    public ValueTask DisposeAsync() => throw new NotImplementedException();
}
