// TEMPORARY: the shape of CloudFs.Host/Nbd/NbdServer.cs (branch nbd) so the host builds before it lands.
// Deleted when main brings the real server.
using System.Net;
using CloudFs.Actors.Gateway;

namespace CloudFs.Host.Nbd;

internal sealed class NbdServer(IVolumeGateway gateway, IPEndPoint endpoint, Action<string>? log) : IAsyncDisposable
{
    public int Port => endpoint.Port;
    public void Start() => throw new NotSupportedException($"the NBD server has not landed yet ({gateway}, {log})");
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
