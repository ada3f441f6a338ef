// The CLI's way into the cluster: a small client ActorSystem with a ClusterClient to the receptionists
// of the contact nodes, asking the management actor one question.
namespace CloudFs.Actors.Management;

public sealed class ManagementClient : IAsyncDisposable
{
    /// <summary>Contacts are "IP[:PORT]" (akka port, default 4053) of cluster nodes.</summary>
    public static Task<ManagementClient> ConnectAsync(IReadOnlyList<string> contacts, CancellationToken ct = default)
        => throw new NotImplementedException();

    /// <summary>Sends <paramref name="request"/> to /user/cloudfs-management and returns the answer
    /// (<see cref="CommandFailed"/> included); throws TimeoutException with a clear message when no node answers.</summary>
    public Task<IManagementMessage> AskAsync(IManagementMessage request, TimeSpan timeout, CancellationToken ct = default)
        => throw new NotImplementedException();

    public ValueTask DisposeAsync() => throw new NotImplementedException();
}
