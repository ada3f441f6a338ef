// The NBD listener (SPEC "NBD on port 10809"): accepts TCP clients and runs one NbdConnection per client over the
// volume gateway, within the node's limits (connections, payload bytes, stall timeouts; TLS when configured).
// A failing connection never affects the listener or the other connections.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;

namespace CloudFs.Host.Nbd;

public sealed class NbdServer : IAsyncDisposable
{
    private readonly IVolumeGateway _gateway;
    private readonly IPEndPoint _endpoint;
    private readonly Action<string>? _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<NbdConnection, Task> _connections = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private int _disposed;
    private long _accepted;
    private long _refused;
    private long _payloadTimeouts;
    private long _lastRefusalLog = Environment.TickCount64 - 10_000;
    private NbdConnectionLimits? _limits;

    public NbdServer(IVolumeGateway gateway, IPEndPoint endpoint, Action<string>? log = null)
    {
        _gateway = gateway;
        _endpoint = endpoint;
        _log = log;
    }

    /// <summary>The port actually bound (useful when port 0 was asked); valid after <see cref="Start"/>.</summary>
    public int Port { get; private set; }

    /// <summary>Limits and time-outs (cloudfs.nbd); read when the server starts.</summary>
    public required NbdSettings Settings { get; init; }

    /// <summary>With credentials, every client must upgrade to TLS (NBD_OPT_STARTTLS) with a certificate of the cluster.</summary>
    public ClusterTls? Tls { get; init; }

    /// <summary>The node's read-write attachments, which this server's writable sessions count in (null: not counted).</summary>
    public VolumeAttachments? Attachments { get; init; }

    /// <summary>Connections currently open (for tests and metrics).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Connections waiting for their client's previous read-write lease to be released before they take it.</summary>
    public int WaitingForRelease => _limits?.Leases?.WaitingForRelease ?? 0;

    /// <summary>Connections accepted since start (for tests and metrics).</summary>
    public long ConnectionsAccepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections closed at once because <see cref="NbdSettings.MaxConnections"/> were open.</summary>
    public long ConnectionsRefused => Interlocked.Read(ref _refused);

    /// <summary>Connections dropped because a WRITE payload did not arrive within <see cref="NbdSettings.PayloadTimeout"/>.</summary>
    public long PayloadTimeouts => Interlocked.Read(ref _payloadTimeouts);

    /// <summary>READ and WRITE payload bytes all connections hold now.</summary>
    public long PayloadBytesInFlight => _limits?.NodeBudget.InUse ?? 0;

    /// <summary>Connections waiting for the node's payload budget.</summary>
    /// <summary>Bytes of large payload buffers that exist (held by requests, or kept for reuse up to the retained bound).</summary>
    public long PayloadBufferBytes => _limits?.Buffers.MappedBytes ?? 0;

    public int PayloadBudgetWaiters => _limits?.NodeBudget.Waiting ?? 0;

    public void Start()
    {
        if (_listener is not null) throw new InvalidOperationException("the NBD server is already started");
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var listener = new Socket(_endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(_endpoint);
            listener.Listen(128);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _limits = new NbdConnectionLimits(Tls, Settings.HandshakeTimeout, Settings.PayloadTimeout, Settings.ConnectionInFlightBytes,
            new NbdPayloadBudget(Settings.InFlightBytes), new PayloadBufferPool(Settings.RetainedPayloadBytes))
        {
            PayloadTimedOut = () => Interlocked.Increment(ref _payloadTimeouts),
            Attachments = Attachments,
            Leases = new NbdAttachmentLeases(_gateway),
        };
        _listener = listener;
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
        _log?.Invoke($"nbd: listening on {listener.LocalEndPoint}");
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await listener.AcceptAsync(ct); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e)
            {
                // A client that resets before accept completes is not the listener's failure.
                if (ct.IsCancellationRequested) return;
                _log?.Invoke($"nbd: accept failed: {e.Message}");
                continue;
            }
            if (_connections.Count >= Settings.MaxConnections)
            {
                Refuse(socket);
                continue;
            }
            Interlocked.Increment(ref _accepted);
            socket.NoDelay = true; // replies are small and latency-bound: never let Nagle hold them back
            var connection = new NbdConnection(socket, _gateway, _log, _limits!);
            _connections[connection] = RunConnectionAsync(connection, ct);
        }
    }

    /// <summary>Closes a connection beyond the cap before the greeting (NBD has no way to say why earlier than that);
    /// the log says so at most every 10 s.</summary>
    private void Refuse(Socket socket)
    {
        var peer = socket.RemoteEndPoint?.ToString() ?? "?";
        var refused = Interlocked.Increment(ref _refused);
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastRefusalLog);
        if (now - last >= 10_000 && Interlocked.CompareExchange(ref _lastRefusalLog, now, last) == last)
            _log?.Invoke($"nbd: refused a connection from {peer}: {Settings.MaxConnections} connections are open (cloudfs.nbd.max-connections; {refused} refused so far)");
        socket.Dispose();
    }

    private async Task RunConnectionAsync(NbdConnection connection, CancellationToken ct)
    {
        await Task.Yield(); // never run a connection's handshake on the accept loop
        try { await connection.RunAsync(ct); }
        catch (Exception e) { _log?.Invoke($"nbd: connection ended with {e.GetType().Name}: {e.Message}"); }
        finally { _connections.TryRemove(connection, out _); }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopping.Cancel();
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop;
        var open = _connections.Values.ToArray();
        try { await Task.WhenAll(open).WaitAsync(TimeSpan.FromSeconds(10)); }
        catch (TimeoutException) { _log?.Invoke($"nbd: {open.Count(t => !t.IsCompleted)} connections did not close within 10 s"); }
        _limits?.Buffers.Clear();
        _stopping.Dispose();
    }
}
