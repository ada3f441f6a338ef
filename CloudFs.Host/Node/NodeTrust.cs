// What a node may do before it starts, as far as trust goes: with --tls its certificate must be a node's and name this
// host (a fresh node takes the certificate's host id); without --tls it listens on loopback only, unless --insecure.
using System.Net;
using CloudFs.Actors.Node;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;

namespace CloudFs.Host.Node;

internal static class NodeTrust
{
    /// <summary>
    /// Loads the node's certificate directory (null without --tls) and returns the options to start with (the host id
    /// the certificate names, when the node had none yet). Throws a CliException with the operator's sentence otherwise.
    /// </summary>
    public static (ClusterTls? Tls, NodeOptions Options) Check(NodeOptions options, NodeOptions planned, IPAddress listen, Action<string> log)
    {
        if (planned.TlsDirectory is not { Length: > 0 } directory)
        {
            if (!IsLoopback(listen) && !planned.Insecure)
                throw new CliException($"refusing to listen on {listen} without TLS, where anyone who reaches it could read and write every volume: " +
                    "create certificates with `cloudfs cert init` and `cloudfs cert issue` (docs/SECURITY.md) and start with --tls DIR, or pass --insecure");
            return (null, options);
        }

        ClusterTls tls;
        try { tls = ClusterTls.Load(directory); }
        catch (CertificateException e) { throw new CliException($"--tls {directory}: {e.Message}"); }
        try
        {
            if (tls.HostId is not { } certified)
                throw new CliException($"the certificate in {directory} is {tls.Identity}'s, not a node's; issue one with `cloudfs cert issue CA --host-id ID --addr {listen} --out DIR`");
            var own = planned.HostId ?? LogStore.PeekHostId(planned.DevicePath);
            if (own is { } id && id != certified)
            {
                var source = planned.HostId is null ? $"the device {planned.DevicePath} says so" : "--host-id";
                throw new CliException($"the certificate in {directory} is for host {certified}, but this node is host {id} ({source}); " +
                    $"issue one for it with `cloudfs cert issue CA --host-id {id} --addr {listen} --out DIR`");
            }
            if (!listen.Equals(IPAddress.Any) && !listen.Equals(IPAddress.IPv6Any) && !tls.Identity.Addresses.Contains(listen))
                log($"the certificate in {directory} does not name {listen}: clients that check the server's address (qemu, nbdinfo) will refuse this node");
            return (tls, options with { HostId = certified });
        }
        catch
        {
            tls.Dispose();
            throw;
        }
    }

    /// <summary>Loopback as the operating system means it (127.0.0.0/8, ::1); 0.0.0.0 listens everywhere, so it is not.</summary>
    public static bool IsLoopback(IPAddress address) =>
        IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);
}
