// Akka remoting over TLS with mutual authentication (DotNetty SSL): an ActorSystem that presents its certificate of the
// cluster and admits as peers only holders of certificates the cluster authority issued (ClusterTls, never the system store).
using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace CloudFs.Actors.Security;

/// <summary>Whom an ActorSystem with remoting TLS admits: a node admits nodes and operators (the CLI), the CLI only nodes.</summary>
public enum RemotingPeers { NodesAndOperators, NodesOnly }

public static class RemotingTls
{
    /// <summary>The address scheme of plain remoting (akka.tcp://cloudfs@IP:PORT).</summary>
    public const string PlainScheme = "akka.tcp";
    /// <summary>The address scheme of remoting over TLS: DotNetty names its transport "ssl.tcp" when SSL is on.</summary>
    public const string TlsScheme = "akka.ssl.tcp";

    /// <summary>What turns DotNetty's SSL on; the certificate and the validation come from <see cref="Setup"/>.</summary>
    public const string EnableSsl = "akka.remote.dot-netty.tcp.enable-ssl = on";

    public static string Scheme(bool tls) => tls ? TlsScheme : PlainScheme;

    /// <summary>
    /// The ActorSystem's setup for remoting over TLS: <paramref name="config"/> (which must say <see cref="EnableSsl"/>),
    /// DotNetty's SSL setup presenting <paramref name="tls"/>'s certificate, and the log filter that prints each
    /// refused peer once, without a stack trace.
    /// </summary>
    public static ActorSystemSetup Setup(Config config, ClusterTls tls, RemotingPeers admit, Action<string>? refused = null) =>
        BootstrapSetup.Create().WithConfig(config).And(SslSetup(tls, admit, refused)).And(RemotingTlsLogFilter.Setup());

    /// <summary>The actor system <paramref name="name"/>: plain remoting without <paramref name="tls"/>, else <see cref="Setup"/>'s.</summary>
    public static ActorSystem CreateSystem(string name, Config config, ClusterTls? tls, RemotingPeers admit, Action<string>? refused = null) =>
        tls is null ? ActorSystem.Create(name, config) : ActorSystem.Create(name, Setup(config, tls, admit, refused));

    /// <summary>
    /// Mutual TLS with <paramref name="tls"/>'s certificate (a node's; the CLI's client certificate). Our own validator
    /// replaces DotNetty's (with a custom validator, suppressValidation and the hostname check are not consulted):
    /// the peer's certificate must chain to the cluster authority alone, and be a node's, or with
    /// <see cref="RemotingPeers.NodesAndOperators"/> an operator's. The host name is not checked: a node's identity is
    /// its host id, and the addresses a member is reached at are its own business. Each refused peer is logged once
    /// per reason (Akka retries a refused connection every few seconds); <paramref name="refused"/> hears every refusal.
    /// </summary>
    public static DotNettySslSetup SslSetup(ClusterTls tls, RemotingPeers admit, Action<string>? refused = null)
    {
        var certificate = tls.Identity.IsNode ? tls.Certificate : tls.ClientCertificate;
        var logged = new RefusalLog();
        return new DotNettySslSetup(certificate, suppressValidation: false, requireMutualAuthentication: true, validateCertificateHostname: false,
            (peer, _, remotePeer, _, log) =>
            {
                if (Admits(tls, admit, peer, Side(remotePeer), out var reason)) return true;
                refused?.Invoke(reason);
                if (logged.First(remotePeer, reason)) log.Warning("remoting: refused the peer at {0}: {1}", RemotingPeer.Host(remotePeer), reason);
                return false;
            });
    }

    /// <summary>
    /// DotNetty hands the validator the remote Akka address ("akka.ssl.tcp://…") when this system connects, and the
    /// socket's endpoint ("IP:PORT") when it accepts: the peer is the TLS server in the first case, the client in the second.
    /// </summary>
    private static TlsPeerRole Side(string remotePeer) =>
        remotePeer.Contains("://", StringComparison.Ordinal) ? TlsPeerRole.Server : TlsPeerRole.Client;

    /// <summary>Whether <paramref name="peer"/> may talk to this system; otherwise why not, in one sentence.</summary>
    public static bool Admits(ClusterTls tls, RemotingPeers admit, X509Certificate? peer, TlsPeerRole role, out string reason)
    {
        if (!tls.TryValidate(peer, role, out var identity, out reason)) return false;
        if (admit == RemotingPeers.NodesOnly && !identity!.IsNode)
        {
            reason = $"the peer presented {identity}'s certificate, not a node's";
            return false;
        }
        return true;
    }

    /// <summary>Remembers which refusals were logged, so a peer that keeps retrying is logged once per reason.</summary>
    private sealed class RefusalLog
    {
        private const int Capacity = 1024;
        private readonly ConcurrentDictionary<string, byte> _seen = new(StringComparer.Ordinal);

        public bool First(string remotePeer, string reason)
        {
            if (_seen.Count >= Capacity) _seen.Clear(); // many distinct peers: log again rather than grow without bound
            return _seen.TryAdd(RemotingPeer.Host(remotePeer) + "\n" + reason, 0);
        }
    }
}

/// <summary>The host of a peer as DotNetty names it (an Akka address or a socket endpoint), without the port that changes with every connection.</summary>
internal static class RemotingPeer
{
    public static string Host(string remotePeer)
    {
        if (remotePeer.Contains("://", StringComparison.Ordinal))
        {
            try { return Address.Parse(remotePeer).Host ?? remotePeer; }
            catch (Exception e) when (e is UriFormatException or FormatException or ArgumentException) { return remotePeer; }
        }
        if (IPEndPoint.TryParse(remotePeer, out var endpoint))
        {
            var ip = endpoint.Address.IsIPv4MappedToIPv6 ? endpoint.Address.MapToIPv4() : endpoint.Address;
            return ip.ToString();
        }
        return remotePeer;
    }
}
