// A host's feed port (cloudfs.replication.feed-port): accepts the connections of other hosts' followers, reads each
// one's hello (FeedWire) and hands the connection to the host's agent, which starts a feeder for it. A connection that
// does not say a valid hello within the hello timeout is closed, and nothing else happens. With the node's
// certificates (--tls) it speaks TLS only and takes only a node certificate of the cluster whose host id is the one the
// hello names: a replica is fed, and its acknowledgements count, only as the host it proves to be.
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Security;

namespace CloudFs.Actors.Replication;

public sealed class FeedServer : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly TimeSpan _helloTimeout;
    private readonly ClusterTls? _tls;
    private readonly ILoggingAdapter _log;

    private FeedServer(Socket listener, TimeSpan helloTimeout, ClusterTls? tls, ILoggingAdapter log)
    {
        _listener = listener;
        _helloTimeout = helloTimeout;
        _tls = tls;
        _log = log;
    }

    /// <summary>The bound port (the configured one, or the one the system chose for 0).</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>
    /// Binds <paramref name="address"/>:<paramref name="port"/> (0: any free port); serves nothing before <see cref="Serve"/>.
    /// With <paramref name="tls"/> (the node's certificates) it serves over mutual TLS only.
    /// </summary>
    public static FeedServer Bind(string address, int port, TimeSpan helloTimeout, ClusterTls? tls, ILoggingAdapter log)
    {
        var ip = IPAddress.TryParse(address, out var parsed) ? parsed : Dns.GetHostAddresses(address).First();
        var listener = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(ip, port));
            listener.Listen(64);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new InvalidOperationException($"cannot listen for feeds on {address}:{port}: {e.Message}", e);
        }
        return new FeedServer(listener, helloTimeout, tls, log);
    }

    /// <summary>Accepts connections from now on and hands each one that says hello to <paramref name="agent"/>.</summary>
    public void Serve(IActorRef agent) => _ = AcceptAsync(agent, _cts.Token);

    private async Task AcceptAsync(IActorRef agent, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptAsync(ct).ConfigureAwait(false); }
            catch (Exception) when (ct.IsCancellationRequested) { return; }
            catch (SocketException e)
            {
                _log.Warning("feed port: accept failed: {0}", e.Message);
                continue;
            }
            _ = HelloAsync(socket, agent, ct);
        }
    }

    private async Task HelloAsync(Socket socket, IActorRef agent, CancellationToken ct)
    {
        var peer = Peer(socket);
        FeedConnection? connection = null;
        try
        {
            FeedWire.Hello hello;
            // The TLS handshake and the hello together get the hello timeout: a silent peer holds nothing for longer.
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                wait.CancelAfter(_helloTimeout);
                connection = await FeedConnection.AcceptAsync(socket, _tls, wait.Token).ConfigureAwait(false);
                var bytes = new byte[FeedWire.HelloSize];
                await ReceiveExactlyAsync(connection.Stream, bytes, wait.Token).ConfigureAwait(false);
                hello = FeedWire.DecodeHello(bytes);
            }
            if (Impostor(connection, hello) is { } refusal)
            {
                _log.Warning("feed port: refused a connection from {0}: {1}", peer, refusal);
                _ = connection.RefuseAsync(refusal);
                return;
            }
            agent.Tell(new ServeFeed(hello, connection));
        }
        catch (Exception e)
        {
            if (!ct.IsCancellationRequested)
                _log.Warning("feed port: refused a connection from {0}: {1}", peer, e is OperationCanceledException ? "no hello in time" : e.Message);
            if (connection is not null) connection.Dispose();
            else socket.Dispose();
        }
    }

    /// <summary>Over TLS, why the hello is not that of the host the certificate proves (null when it is, or without TLS).</summary>
    private string? Impostor(FeedConnection connection, FeedWire.Hello hello)
    {
        if (_tls is null) return null;
        var certificate = connection.Peer!;
        if (certificate.HostId is not { } host)
            return $"it presented {certificate}'s certificate, not a node's: only a replica host is fed";
        if (host != hello.Follower)
            return $"its hello says host {hello.Follower}, but its certificate is host {host}'s";
        return null;
    }

    private static async Task ReceiveExactlyAsync(Stream stream, byte[] buffer, CancellationToken ct)
    {
        for (var have = 0; have < buffer.Length;)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(have), ct).ConfigureAwait(false);
            if (n == 0) throw new FeedProtocolException($"the connection closed after {have} bytes of a hello");
            have += n;
        }
    }

    private static string Peer(Socket socket)
    {
        try { return socket.RemoteEndPoint?.ToString() ?? "?"; }
        catch (ObjectDisposedException) { return "?"; }
    }

    public void Dispose()
    {
        _cts.Cancel();
        _listener.Dispose();
    }
}
