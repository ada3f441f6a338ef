// One question to the cluster's management actor through ManagementClient (over mutual TLS with --tls DIR); a refusal
// becomes a CliException.
using System.Net;
using CloudFs.Actors.Management;
using CloudFs.Actors.Security;

namespace CloudFs.Host.Cli;

internal static class ManagementCall
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Asks <paramref name="contacts"/>; with <paramref name="tlsDirectory"/> (an operator's or a node's certificate directory) over TLS.</summary>
    public static async Task<T> AskAsync<T>(IReadOnlyList<IPEndPoint> contacts, string? tlsDirectory, IManagementMessage request, TimeSpan timeout, CancellationToken ct)
        where T : IManagementMessage
    {
        using var tls = LoadTls(tlsDirectory);
        await using var client = await ManagementClient.ConnectAsync(contacts.Select(AddressParser.Format).ToArray(), tls, ct);
        var answer = await client.AskAsync(request, timeout, ct);
        return answer switch
        {
            T expected => expected,
            CommandFailed failed => throw new CliException(failed.Reason.TrimEnd('.', '\n')),
            _ => throw new CliException($"the cluster answered {answer.GetType().Name} to {request.GetType().Name}; are the node and this CLI the same version?"),
        };
    }

    private static ClusterTls? LoadTls(string? directory)
    {
        if (directory is not { Length: > 0 }) return null;
        try { return ClusterTls.Load(directory); }
        catch (CertificateException e) { throw new CliException($"--tls {directory}: {e.Message}"); }
    }
}
