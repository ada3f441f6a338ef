// One incarnation of a node: an ActorSystem (one cluster member, one UID) with the log store it opened and the actors
// it runs. A node that the cluster removed starts the next one on the same device and address (CloudFsNode.Rejoin.cs).
using Akka.Actor;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Identity;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

internal sealed class NodeIncarnation(ActorSystem system, LogStore store, NodeOptions options, CloudFsSettings settings, IVolumeGateway gateway, IActorRef management,
    IActorRef volumes, ClusterTls? tls, ProvenHosts provenHosts, Func<bool> downed)
{
    public ActorSystem System { get; } = system;
    /// <summary>The store this incarnation opened; it is closed (final checkpoint, device released) when the system ends.</summary>
    public LogStore Store { get; } = store;
    public NodeOptions Options { get; } = options;
    public CloudFsSettings Settings { get; } = settings;
    public IVolumeGateway Gateway { get; } = gateway;
    public IActorRef Management { get; } = management;
    public IActorRef Volumes { get; } = volumes;
    public ClusterTls? Tls { get; } = tls;
    public ProvenHosts ProvenHosts { get; } = provenHosts;
    public DateTime StartedAt { get; } = DateTime.UtcNow;

    /// <summary>Completed with the incarnation that replaced this one once it is Up; faulted when the node stops instead.</summary>
    public TaskCompletionSource<NodeIncarnation> Successor { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly CoordinatedShutdown _shutdown = CoordinatedShutdown.Get(system);

    /// <summary>False once the system's shutdown started (it left, was downed or is stopping): its actors (and its store)
    /// are going away.</summary>
    public bool Alive => _shutdown.ShutdownReason is null && !System.WhenTerminated.IsCompleted;

    /// <summary>Whether the cluster downed this member (it saw itself Down, or a peer quarantined it).</summary>
    public bool Downed => downed();

    /// <summary>
    /// <paramref name="from"/> while it runs, else the incarnation that replaces it once that one is Up, waited for at
    /// most <paramref name="wait"/>. Throws <see cref="NodeUnavailableException"/> when the node stops instead, or none is up by
    /// then.
    /// </summary>
    public static async Task<NodeIncarnation> LiveAsync(NodeIncarnation from, TimeSpan wait, CancellationToken ct)
    {
        var incarnation = from;
        var deadline = DateTime.UtcNow + wait;
        while (!incarnation.Alive)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) break;
            try
            {
                incarnation = await incarnation.Successor.Task.WaitAsync(left, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                break;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new NodeUnavailableException("the node is stopping", e);
            }
        }
        return incarnation.Alive ? incarnation : throw new NodeUnavailableException($"the node is rejoining the cluster (no member for {wait.TotalSeconds:0} s)");
    }
}
