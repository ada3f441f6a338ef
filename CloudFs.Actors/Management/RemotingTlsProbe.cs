// Does a node's akka port speak TLS? A TLS handshake that gets a server certificate back says yes. The CLI asks only
// after its plain connection failed, so a plain node (whose framing would choke on a ClientHello) is never probed.
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;

namespace CloudFs.Actors.Management;

internal static class RemotingTlsProbe
{
    public static async Task<bool> SpeaksTlsAsync(string host, int port, TimeSpan timeout)
    {
        var sawCertificate = false;
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            using var socket = new TcpClient();
            await socket.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            await using var ssl = new SslStream(socket.GetStream(), leaveInnerStreamOpen: false);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = host,
                // Seeing a certificate is all the probe wants; it never goes on to talk.
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    sawCertificate = certificate is not null;
                    return false;
                },
            }, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or OperationCanceledException)
        {
        }
        return sawCertificate;
    }
}
