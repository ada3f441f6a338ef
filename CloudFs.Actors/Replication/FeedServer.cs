// A host's feed port (cloudfs.replication.feed-port): accepts the connections of other hosts' followers, reads each
// one's hello (FeedWire) and hands the connection to the host's agent, which starts a feeder for it. A connection that
// does not say a valid hello within the hello timeout is closed, and nothing else happens.
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;

namespace CloudFs.Actors.Replication;

public sealed class FeedServer : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly TimeSpan _helloTimeout;
    private readonly ILoggingAdapter _log;

    private FeedServer(Socket listener, TimeSpan helloTimeout, ILoggingAdapter log)
    {
        _listener = listener;
        _helloTimeout = helloTimeout;
        _log = log;
    }

    /// <summary>The bound port (the configured one, or the one the system chose for 0).</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>Binds <paramref name="address"/>:<paramref name="port"/> (0: any free port); serves nothing before <see cref="Serve"/>.</summary>
    public static FeedServer Bind(string address, int port, TimeSpan helloTimeout, ILoggingAdapter log)
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
        return new FeedServer(listener, helloTimeout, log);
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
        try
        {
            FeedWire.Tune(socket);
            var hello = new byte[FeedWire.HelloSize];
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                wait.CancelAfter(_helloTimeout);
                await ReceiveExactlyAsync(socket, hello, wait.Token).ConfigureAwait(false);
            }
            agent.Tell(new ServeFeed(FeedWire.DecodeHello(hello), socket));
        }
        catch (Exception e)
        {
            if (!ct.IsCancellationRequested)
                _log.Warning("feed port: refused a connection from {0}: {1}", Peer(socket), e is OperationCanceledException ? "no hello in time" : e.Message);
            socket.Dispose();
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer, CancellationToken ct)
    {
        for (var have = 0; have < buffer.Length;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(have), SocketFlags.None, ct).ConfigureAwait(false);
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
