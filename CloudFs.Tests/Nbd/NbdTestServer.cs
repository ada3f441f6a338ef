// An NbdServer on 127.0.0.1 with an ephemeral port over a MemoryVolumeGateway: what every NBD test starts.
using System.Collections.Concurrent;
using System.Net;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;
using CloudFs.Host.Nbd;
using Xunit.Abstractions;

using CloudFs.Tests.Doubles;

namespace CloudFs.Tests.Nbd;

public sealed class NbdTestServer : IAsyncDisposable
{
    public const long DefaultSize = 16L * 1024 * 1024;

    private NbdTestServer(MemoryVolumeGateway gateway, NbdServer server)
    {
        Gateway = gateway;
        Server = server;
    }

    public MemoryVolumeGateway Gateway { get; }
    public NbdServer Server { get; }
    public ConcurrentQueue<string> Log { get; } = new();
    public int Port => Server.Port;

    public static NbdTestServer Start(MemoryVolumeGateway? gateway = null, ITestOutputHelper? output = null, TimeSpan? handshakeTimeout = null, long? inFlightBytes = null,
        NbdSettings? settings = null, ClusterTls? tls = null)
    {
        gateway ??= new MemoryVolumeGateway();
        var given = settings ?? CloudFsSettings.Default.Nbd;
        NbdTestServer? result = null;
        var server = new NbdServer(gateway, new IPEndPoint(IPAddress.Loopback, 0), line =>
        {
            result?.Log.Enqueue(line);
            try { output?.WriteLine(line); }
            catch (InvalidOperationException) { } // a line logged after the test ended
        })
        {
            Settings = given with
            {
                HandshakeTimeout = handshakeTimeout ?? given.HandshakeTimeout,
                ConnectionInFlightBytes = inFlightBytes ?? given.ConnectionInFlightBytes,
            },
            Tls = tls,
        };
        result = new NbdTestServer(gateway, server);
        server.Start();
        return result;
    }

    public string Uri(Id160 volume) => $"nbd://127.0.0.1:{Port}/{volume}";
    public string ListUri => $"nbd://127.0.0.1:{Port}";

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}
