// The node itself (cloudfs { } top level): its device, host id, addresses, ports, cluster join and log level.
using System.Net;
using Akka.Configuration;
using Akka.Event;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Settings;

/// <param name="Device">The log: a regular file or a raw block device.</param>
/// <param name="Size">Size of a file-backed log created on first use.</param>
/// <param name="HostId">The configured host id; null: the device header's, or a new one.</param>
/// <param name="LogLevel">CloudFS's own events from this level (NodeLogger).</param>
/// <param name="Listen">The IP address every server of the node binds to.</param>
/// <param name="AkkaPort">Akka remoting; 0 picks a free port.</param>
/// <param name="JoinTimeout">How long start-up waits to become an Up member.</param>
/// <param name="Seeds">Other nodes to join, "IP" or "IP:PORT"; none: a one-node cluster.</param>
public sealed record NodeSettings(string Device, long Size, Id160? HostId, LogLevel LogLevel, string Listen, int AkkaPort, int HttpPort, int NbdPort,
    TimeSpan JoinTimeout, IReadOnlyList<string> Seeds)
{
    public static NodeSettings Read(SettingsReader r)
    {
        var device = r.Text("cloudfs.device");
        if (device.Length == 0) throw r.Invalid("cloudfs.device", "a path");
        var host = r.Text("cloudfs.host-id");
        Id160? hostId = null;
        if (host.Length > 0) hostId = Id160.TryParse(host, out var id) ? id : throw r.Invalid("cloudfs.host-id", "40 hex characters or \"\"");
        var listen = r.Text("cloudfs.listen");
        if (!IPAddress.TryParse(listen, out _)) throw r.Invalid("cloudfs.listen", "an IP address");
        var seeds = r.List("cloudfs.seeds");
        foreach (var seed in seeds)
        {
            try { CloudFsConfig.SplitHostPort(seed, defaultPort: 1); } // only the form is checked here
            catch (FormatException) { throw r.Invalid("cloudfs.seeds", "a list of \"IP\" or \"IP:PORT\""); }
        }
        return new NodeSettings(
            device,
            r.Bytes("cloudfs.size", min: 1),
            hostId,
            r.Level("cloudfs.log-level"),
            listen,
            r.Port("cloudfs.akka-port"),
            r.Port("cloudfs.http-port"),
            r.Port("cloudfs.nbd-port"),
            r.Duration("cloudfs.join-timeout"),
            seeds);
    }

    /// <summary>cloudfs.log-level alone, for NodeLogger (made by Akka from akka.loggers, with only the system's config).</summary>
    public static LogLevel LogLevelOf(Config config) => new SettingsReader(config).Level("cloudfs.log-level");
}
