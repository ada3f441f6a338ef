// Keeps ASP.NET Core's console lifetime away from SIGINT/SIGTERM: the node owns its shutdown order
// (HTTP, then NBD, then the node's checkpoint), so the web host must not stop itself on a signal.
using Microsoft.Extensions.Hosting;

namespace CloudFs.Host.Http;

internal sealed class QuietHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
