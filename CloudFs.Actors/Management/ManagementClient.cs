// The CLI's way into the cluster: a small client ActorSystem with a ClusterClient to the receptionists
// of the contact nodes, asking the management actor one question; over mutual TLS when given a certificate directory.
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster.Tools.Client;
using Akka.Configuration;
using Akka.Remote;
using CloudFs.Actors.Node;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;

namespace CloudFs.Actors.Management;

public sealed class ManagementClient : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly IActorRef _client;
    private readonly string _contacts;
    private readonly bool _tls;
    // Set when it is clear that no answer can come: the nodes speak TLS and this client does not, or the other way round.
    private readonly TaskCompletionSource<string> _hopeless = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _associated;

    private ManagementClient(ActorSystem system, IActorRef client, string contacts, bool tls)
    {
        _system = system;
        _client = client;
        _contacts = contacts;
        _tls = tls;
    }

    /// <summary>
    /// Contacts are "IP[:PORT]" (akka port, default 4053) of cluster nodes. With <paramref name="tls"/> (an operator's
    /// or a node's certificate directory, owned by the caller) remoting runs over mutual TLS and only nodes of that
    /// cluster are believed; without, against nodes that run with --tls, the ask fails at once saying so.
    /// </summary>
    public static Task<ManagementClient> ConnectAsync(IReadOnlyList<string> contacts, ClusterTls? tls = null, CancellationToken ct = default)
    {
        if (contacts.Count == 0) throw new ArgumentException("at least one contact node (IP[:PORT]) is needed", nameof(contacts));
        var addresses = contacts.Select(c => CloudFsConfig.SeedAddress(c, tls is not null)).ToArray();
        var paths = addresses.Select(a => ActorPath.Parse(a + "/system/receptionist")).ToImmutableHashSet();
        var (host, port) = CloudFsConfig.SplitHostPort(contacts[0], CloudFsSettings.Default.Node.AkkaPort);
        // The node answers to this address: bind where the route to the first contact leaves this machine.
        var config = ConfigurationFactory.ParseString($$"""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp.hostname = "{{LocalAddressTowards(host, port)}}"
            akka.remote.dot-netty.tcp.port = 0
            {{(tls is null ? "" : RemotingTls.EnableSsl)}}
            # The CLI prints its own one-line errors; Akka's connection chatter would only confuse.
            akka.loglevel = OFF
            akka.stdout-loglevel = OFF
            akka.log-dead-letters = off
            akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
            """).WithFallback(CloudFsConfig.Default());
        ManagementClient? created = null;
        // The CLI believes only nodes: an operator's certificate on the other end is not the cluster answering.
        var system = RemotingTls.CreateSystem("cloudfs-cli", config, tls, RemotingPeers.NodesOnly,
            refused => created?._hopeless.TrySetResult($"the node at {string.Join(", ", contacts)} is not one of the cluster of this certificate directory: {refused}"));
        var client = system.ActorOf(ClusterClient.Props(ClusterClientSettings.Create(system).WithInitialContacts(paths)), "management-client");
        created = new ManagementClient(system, client, string.Join(", ", contacts), tls is not null);
        var watcher = system.ActorOf(Props.Create(() => new AssociationWatcher(created.AssociationFailed, () => Volatile.Write(ref created._associated, 1))), "association-watcher");
        system.EventStream.Subscribe(watcher, typeof(AssociatedEvent));
        system.EventStream.Subscribe(watcher, typeof(AssociationErrorEvent));
        system.EventStream.Subscribe(watcher, typeof(DisassociatedEvent));
        return Task.FromResult(created);
    }

    /// <summary>Sends <paramref name="request"/> to /user/cloudfs-management and returns the answer
    /// (<see cref="CommandFailed"/> included); throws TimeoutException with a clear message when no node answers, and
    /// a <see cref="CertificateException"/> as soon as TLS on one side only (or of another cluster) makes an answer impossible.</summary>
    /// <summary>How long a stopped system's client waits for the certificate check's reason (see <see cref="AskAsync"/>).</summary>
    private static readonly TimeSpan ReasonGrace = TimeSpan.FromSeconds(1);

    public async Task<IManagementMessage> AskAsync(IManagementMessage request, TimeSpan timeout, CancellationToken ct = default)
    {
        object reply;
        var ask = _client.Ask<object>(new ClusterClient.Send(ManagementActor.Path, request, localAffinity: false), timeout, ct);
        // Akka.Remote stops an actor system whose outbound TLS handshake fails (the node refused our certificate):
        // its scheduler, and with it the ask's timeout, stops too, so that ends the wait as well.
        var ended = await Task.WhenAny(ask, _hopeless.Task, _system.WhenTerminated).ConfigureAwait(false);
        if (ended == _hopeless.Task && !ask.IsCompletedSuccessfully)
            throw new CertificateException(await _hopeless.Task.ConfigureAwait(false));
        if (ended == _system.WhenTerminated && !ask.IsCompletedSuccessfully)
        {
            // The certificate check that says why (the node is of another cluster) runs on the handshake's thread, and
            // on a busy machine its word can land a moment after the system stopped: it is waited for that long.
            if (await Task.WhenAny(_hopeless.Task, Task.Delay(ReasonGrace, CancellationToken.None)).ConfigureAwait(false) == _hopeless.Task)
                throw new CertificateException(await _hopeless.Task.ConfigureAwait(false));
            throw new CertificateException($"the TLS handshake with the node at {_contacts} failed: does it run with --tls, and was the certificate directory issued by its cluster's authority?");
        }
        try
        {
            reply = await ask.ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            var tlsHint = _tls && Volatile.Read(ref _associated) == 0
                ? "; no TLS connection could be made: does the node run with --tls, and was the certificate directory issued by its cluster's authority?"
                : " (is a node running there, on its akka port?)";
            throw new TimeoutException($"no CloudFS node answered within {timeout.TotalSeconds:0.#} s at {_contacts}{tlsHint}");
        }
        return reply as IManagementMessage
            ?? throw new InvalidOperationException($"the node answered with an unexpected {reply.GetType().Name}");
    }

    public async ValueTask DisposeAsync()
    {
        await _system.Terminate().ConfigureAwait(false);
    }

    /// <summary>
    /// A connection to a contact failed or dropped. A plain client cannot tell a node that speaks TLS from one that
    /// is down, so it looks: a TLS handshake to that address that gets a certificate back means the cluster needs --tls.
    /// </summary>
    private void AssociationFailed(Address remote)
    {
        if (_tls || _hopeless.Task.IsCompleted || remote.Host is not { } host || remote.Port is not { } port) return;
        _ = Task.Run(async () =>
        {
            if (await RemotingTlsProbe.SpeaksTlsAsync(host, port, TimeSpan.FromSeconds(3)).ConfigureAwait(false))
                _hopeless.TrySetResult($"the cluster at {host}:{port} runs with TLS: pass --tls DIR (an operator's or a node's certificate directory of the cluster, or set CLOUDFS_TLS)");
        });
    }

    private sealed class AssociationWatcher : ReceiveActor
    {
        public AssociationWatcher(Action<Address> failed, Action associated)
        {
            Receive<AssociatedEvent>(_ => associated());
            Receive<AssociationErrorEvent>(e => failed(e.RemoteAddress));
            Receive<DisassociatedEvent>(e => failed(e.RemoteAddress));
        }
    }

    private static string LocalAddressTowards(string host, int port)
    {
        try
        {
            var target = IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host).First(a => a.AddressFamily == AddressFamily.InterNetwork);
            if (IPAddress.IsLoopback(target)) return "127.0.0.1";
            using var probe = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            probe.Connect(target, port); // UDP connect sends nothing: it only picks the route
            return ((IPEndPoint)probe.LocalEndPoint!).Address.ToString();
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException)
        {
            return "127.0.0.1";
        }
    }
}
