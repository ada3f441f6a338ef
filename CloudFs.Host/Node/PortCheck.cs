// Refuses to start a node whose ports are taken, before anything (device, cluster) is touched.
using System.Net;
using System.Net.Sockets;

namespace CloudFs.Host.Node;

internal static class PortCheck
{
    /// <summary>Null when every port can be bound on <paramref name="address"/>; else the sentence naming the first busy one.</summary>
    public static string? FirstBusy(IPAddress address, IEnumerable<(string What, int Port)> ports)
    {
        foreach (var (what, port) in ports)
        {
            using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                probe.Bind(new IPEndPoint(address, port));
                probe.Listen(1);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return $"the {what} port {address}:{port} is already in use (another node running?)";
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
            {
                return $"cannot listen on {address}: the address is not on this machine";
            }
            catch (SocketException e)
            {
                return $"cannot listen on {address}:{port} for {what}: {e.Message}";
            }
        }
        return null;
    }
}
