// One question to the cluster's management actor through ManagementClient; a refusal becomes a CliException.
using System.Net;
using CloudFs.Actors.Management;

namespace CloudFs.Host.Cli;

internal static class ManagementCall
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    public static async Task<T> AskAsync<T>(IReadOnlyList<IPEndPoint> contacts, IManagementMessage request, TimeSpan timeout, CancellationToken ct)
        where T : IManagementMessage
    {
        await using var client = await ManagementClient.ConnectAsync(contacts.Select(AddressParser.Format).ToArray(), ct);
        var answer = await client.AskAsync(request, timeout, ct);
        return answer switch
        {
            T expected => expected,
            CommandFailed failed => throw new CliException(failed.Reason.TrimEnd('.', '\n')),
            _ => throw new CliException($"the cluster answered {answer.GetType().Name} to {request.GetType().Name}; are the node and this CLI the same version?"),
        };
    }
}
