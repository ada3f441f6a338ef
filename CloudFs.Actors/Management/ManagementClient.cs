// The CLI's way into the cluster: a small client ActorSystem with a ClusterClient to the receptionists
// of the contact nodes, asking the management actor one question.
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster.Tools.Client;
using Akka.Configuration;
using CloudFs.Actors.Node;

namespace CloudFs.Actors.Management;

public sealed class ManagementClient : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly IActorRef _client;
    private readonly string _contacts;

    private ManagementClient(ActorSystem system, IActorRef client, string contacts)
    {
        _system = system;
        _client = client;
        _contacts = contacts;
    }

    /// <summary>Contacts are "IP[:PORT]" (akka port, default 4053) of cluster nodes.</summary>
    public static Task<ManagementClient> ConnectAsync(IReadOnlyList<string> contacts, CancellationToken ct = default)
    {
        if (contacts.Count == 0) throw new ArgumentException("at least one contact node (IP[:PORT]) is needed", nameof(contacts));
        var addresses = contacts.Select(CloudFsConfig.SeedAddress).ToArray();
        var paths = addresses.Select(a => ActorPath.Parse(a + "/system/receptionist")).ToImmutableHashSet();
        var (host, port) = CloudFsConfig.SplitHostPort(contacts[0], 4053);
        // The node answers to this address: bind where the route to the first contact leaves this machine.
        var config = ConfigurationFactory.ParseString($$"""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp.hostname = "{{LocalAddressTowards(host, port)}}"
            akka.remote.dot-netty.tcp.port = 0
            # The CLI prints its own one-line errors; Akka's connection chatter would only confuse.
            akka.loglevel = OFF
            akka.stdout-loglevel = OFF
            akka.log-dead-letters = off
            akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
            """).WithFallback(CloudFsConfig.Default());
        var system = ActorSystem.Create("cloudfs-cli", config);
        var client = system.ActorOf(ClusterClient.Props(ClusterClientSettings.Create(system).WithInitialContacts(paths)), "management-client");
        return Task.FromResult(new ManagementClient(system, client, string.Join(", ", contacts)));
    }

    /// <summary>Sends <paramref name="request"/> to /user/cloudfs-management and returns the answer
    /// (<see cref="CommandFailed"/> included); throws TimeoutException with a clear message when no node answers.</summary>
    public async Task<IManagementMessage> AskAsync(IManagementMessage request, TimeSpan timeout, CancellationToken ct = default)
    {
        object reply;
        try
        {
            reply = await _client.Ask<object>(new ClusterClient.Send(ManagementActor.Path, request, localAffinity: false), timeout, ct)
                .ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            throw new TimeoutException(
                $"no CloudFS node answered within {timeout.TotalSeconds:0.#} s at {_contacts} (is a node running there, on its akka port?)");
        }
        return reply as IManagementMessage
            ?? throw new InvalidOperationException($"the node answered with an unexpected {reply.GetType().Name}");
    }

    public async ValueTask DisposeAsync()
    {
        await _system.Terminate().ConfigureAwait(false);
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
