// One feed connection (FeedWire), from either end: the socket and the stream the feed is spoken on, plain or, with the
// node's certificates (--tls), mutual TLS. Over TLS the primary's feed port takes only a client certificate of the
// cluster (Peer says whose), and a replica takes only the certificate of the host it means to follow, so neither end
// can be an impostor. A frame is written whole and then flushed: over TLS its records go out in one socket write.
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

public sealed class FeedConnection : IDisposable
{
    private readonly Socket _socket;

    private FeedConnection(Socket socket, Stream stream, ClusterCertificate? peer)
    {
        _socket = socket;
        Stream = stream;
        Peer = peer;
    }

    /// <summary>What the feed is read from and written to; a writer flushes after each frame.</summary>
    public Stream Stream { get; }
    /// <summary>Who the other end's certificate names (over TLS); null on a plain connection.</summary>
    public ClusterCertificate? Peer { get; }
    public bool IsTls => Peer is not null;

    /// <summary>The other end's address, for log lines.</summary>
    public string RemoteEndPoint
    {
        get
        {
            try { return _socket.RemoteEndPoint?.ToString() ?? "?"; }
            catch (ObjectDisposedException) { return "?"; }
        }
    }

    /// <summary>
    /// The feed port's side of an accepted <paramref name="socket"/>. With <paramref name="tls"/> the TLS handshake
    /// requires a client certificate of the cluster; a FeedProtocolException says why one failed (the socket is closed).
    /// </summary>
    public static async Task<FeedConnection> AcceptAsync(Socket socket, ClusterTls? tls, CancellationToken ct)
    {
        FeedWire.Tune(socket);
        var network = new NetworkStream(socket, ownsSocket: true);
        if (tls is null) return new FeedConnection(socket, network, null);
        var batching = new FrameBatchingStream(network);
        var ssl = new SslStream(batching, leaveInnerStreamOpen: false);
        string? refused = null;
        try
        {
            await ssl.AuthenticateAsServerAsync(tls.ServerOptions(requireClientCertificate: true, reason => refused ??= reason), ct).ConfigureAwait(false);
            var peer = tls.Validate(ssl.RemoteCertificate, TlsPeerRole.Client);
            batching.Batching = true;
            return new FeedConnection(socket, ssl, peer);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or CertificateException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new FeedProtocolException(refused is not null
                ? $"its certificate was refused: {refused}"
                : $"the TLS handshake failed ({e.GetBaseException().Message.TrimEnd('.')}; the feed port speaks TLS only)");
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// A replica's connection to the feed port of <paramref name="primary"/> at <paramref name="host"/>:<paramref name="port"/>.
    /// With <paramref name="tls"/> the server must present <paramref name="primary"/>'s node certificate, else a
    /// CloudFsException says why and nothing is sent.
    /// </summary>
    public static async Task<FeedConnection> ConnectAsync(string host, int port, Id160 primary, ClusterTls? tls, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        Stream? stream = null;
        try
        {
            FeedWire.Tune(socket);
            await socket.ConnectAsync(host, port, ct).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (tls is null) return new FeedConnection(socket, stream, null);
            var batching = new FrameBatchingStream(stream);
            var ssl = new SslStream(batching, leaveInnerStreamOpen: false);
            stream = ssl;
            string? refused = null;
            try
            {
                await ssl.AuthenticateAsClientAsync(tls.ClientOptions(host, primary, reason => refused ??= reason), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                throw new CloudFsException(refused is not null
                    ? $"the feed port at {host}:{port} is not host {primary}'s: {refused}"
                    : $"no TLS with the feed port at {host}:{port} ({e.GetBaseException().Message.TrimEnd('.')})");
            }
            batching.Batching = true;
            return new FeedConnection(socket, ssl, tls.Validate(ssl.RemoteCertificate, TlsPeerRole.Server));
        }
        catch
        {
            if (stream is not null) await stream.DisposeAsync().ConfigureAwait(false);
            else socket.Dispose();
            throw;
        }
    }

    /// <summary>Writes one frame (or hello, or acknowledgement) whole and sends it.</summary>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
    {
        await Stream.WriteAsync(frame, ct).ConfigureAwait(false);
        await Stream.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Says why in an end frame (best effort, within a few seconds) and closes the connection.</summary>
    public async Task RefuseAsync(string reason)
    {
        try
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await SendAsync(FeedWire.EncodeEnd(false, reason), wait.Token).ConfigureAwait(false);
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception) { }   // the peer is gone already
        finally
        {
            Dispose();
        }
    }

    public void Dispose() => Stream.Dispose();
}
