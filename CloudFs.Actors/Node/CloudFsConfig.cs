// Loads the node's HOCON: the embedded hocon/cloudfs.conf, an optional file over it, and the flags over both.
using System.Globalization;
using Akka.Configuration;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

public static class CloudFsConfig
{
    private static readonly Lazy<Config> Embedded = new(() =>
    {
        using var stream = typeof(CloudFsConfig).Assembly.GetManifestResourceStream("CloudFs.Actors.cloudfs.conf")
            ?? throw new InvalidOperationException("the embedded cloudfs.conf is missing from CloudFs.Actors");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    /// <summary>hocon/cloudfs.conf as embedded in this assembly (every setting with its default).</summary>
    public static Config Default() => Embedded.Value;

    /// <summary>
    /// The node's effective config: the flags of <paramref name="options"/> over options.ConfigFile over the embedded
    /// defaults. A flag left at its NodeOptions default does not override the file. Seeds become
    /// akka.cluster.seed-nodes; with none the node joins itself (CloudFsNode: the port may be 0 until bound).
    /// </summary>
    public static Config Build(NodeOptions options) => Load(options).Config;

    /// <summary>
    /// The node's effective config (<see cref="Build"/>) and its settings, read once from it. A missing or wrong setting is a
    /// <see cref="SettingsException"/> naming it, before anything starts.
    /// </summary>
    public static (Config Config, CloudFsSettings Settings) Load(NodeOptions options)
    {
        var config = Default();
        if (options.ConfigFile is { } file)
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"the config file {file} does not exist", file);
            config = ConfigurationFactory.ParseString(File.ReadAllText(file)).WithFallback(config);
        }
        var defaults = new NodeOptions();
        var flags = new List<string>();
        if (options.DevicePath != defaults.DevicePath) flags.Add($"cloudfs.device = {Quote(options.DevicePath)}");
        if (options.Size != defaults.Size) flags.Add($"cloudfs.size = {options.Size.ToString(CultureInfo.InvariantCulture)}");
        if (options.HostId is { } host) flags.Add($"cloudfs.host-id = \"{host}\"");
        if (options.Listen != defaults.Listen) flags.Add($"cloudfs.listen = {Quote(options.Listen)}");
        if (options.AkkaPort != defaults.AkkaPort) flags.Add($"cloudfs.akka-port = {options.AkkaPort}");
        if (options.HttpPort != defaults.HttpPort) flags.Add($"cloudfs.http-port = {options.HttpPort}");
        if (options.NbdPort != defaults.NbdPort) flags.Add($"cloudfs.nbd-port = {options.NbdPort}");
        if (options.TlsDirectory is { Length: > 0 } tls) flags.Add($"cloudfs.tls.directory = {Quote(tls)}");
        if (options.Insecure) flags.Add("cloudfs.tls.insecure = on");
        if (options.LogLevel is { } level) flags.Add($"cloudfs.log-level = {Quote(level)}");
        if (options.Seeds.Count > 0) flags.Add($"cloudfs.seeds = [{string.Join(", ", options.Seeds.Select(Quote))}]");
        config = ConfigurationFactory.ParseString(string.Join('\n', flags)).WithFallback(config);

        var settings = CloudFsSettings.From(config);
        return (WithAkka(config, settings), settings);
    }

    /// <summary>Akka's own settings follow the cloudfs ones, so a config file may set either.</summary>
    private static Config WithAkka(Config config, CloudFsSettings settings)
    {
        // With a certificate directory remoting runs over TLS (CloudFsNode adds the certificate), and its addresses
        // become akka.ssl.tcp://: seeds must be named with the scheme the members really have.
        var remotingTls = settings.Tls.Directory is not null;
        var seeds = settings.Node.Seeds.Select(s => Quote(SeedAddress(s, remotingTls)));
        var akka = string.Join('\n',
            remotingTls ? Security.RemotingTls.EnableSsl : "",
            $"akka.remote.dot-netty.tcp.hostname = {Quote(settings.Node.Listen)}",
            $"akka.remote.dot-netty.tcp.port = {settings.Node.AkkaPort}",
            $"akka.cluster.seed-nodes = [{string.Join(", ", seeds)}]",
            $"akka.loglevel = {AkkaLevel(settings.Node.LogLevel)}",
            // Remoting's lifecycle events (a peer's association refused while it starts, disassociated when its process
            // exits: WARN and ERROR lines on every member) say nothing CloudFS's own membership lines do not; at debug only.
            $"akka.remote.log-remote-lifecycle-events = {(settings.Node.LogLevel == Akka.Event.LogLevel.DebugLevel ? "DEBUG" : "off")}",
            $"akka.cluster.sharding.passivate-idle-entity-after = {(long)settings.Volumes.PassivateIdleAfter.TotalMilliseconds}ms");
        // The cluster tools' own defaults (and serializers) from the start: a message from a member that started
        // sooner must never meet a serializer this member would only register when the extension is first used.
        return ConfigurationFactory.ParseString(akka).WithFallback(config)
            .WithFallback(Akka.Cluster.Sharding.ClusterSharding.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.Client.ClusterClientReceptionist.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.PublishSubscribe.DistributedPubSub.DefaultConfig())
            .WithFallback(Akka.DistributedData.DistributedData.DefaultConfig());
    }

    /// <summary>The akka.loglevel that lets NodeLogger see every event cloudfs.log-level asks for.</summary>
    private static string AkkaLevel(Akka.Event.LogLevel level) => level switch
    {
        Akka.Event.LogLevel.ErrorLevel => "ERROR",
        Akka.Event.LogLevel.WarningLevel => "WARNING",
        Akka.Event.LogLevel.InfoLevel => "INFO",
        _ => "DEBUG",
    };

    /// <summary>Prefix of the cluster role every member carries: "host:" and its host id.</summary>
    public const string HostRolePrefix = "host:";

    /// <summary>
    /// Each member carries its host id as the cluster role "host:&lt;id&gt;", so every member knows every host id from
    /// gossip. The id is the one given, else the one in the device header, else a fresh one the log is then formatted
    /// with (a different id for a formatted device is still refused when the log opens). The settings come back with that id.
    /// </summary>
    public static (Config Config, CloudFsSettings Settings) WithHostRole(Config config, CloudFsSettings settings)
    {
        var id = settings.Node.HostId ?? LogStore.PeekHostId(settings.Node.Device) ?? Id160.Random();
        var roles = config.GetStringList("akka.cluster.roles", []).Where(r => !r.StartsWith(HostRolePrefix, StringComparison.Ordinal))
            .Append(HostRolePrefix + id.ToString().ToLowerInvariant());
        var withRole = ConfigurationFactory.ParseString(
                $"cloudfs.host-id = \"{id}\"\nakka.cluster.roles = [{string.Join(", ", roles.Select(Quote))}]")
            .WithFallback(config);
        return (withRole, settings with { Node = settings.Node with { HostId = id } });
    }

    /// <summary>The NodeOptions the settings stand for (what the node really runs with).</summary>
    public static NodeOptions ToOptions(CloudFsSettings settings, string? configFile) => new()
    {
        DevicePath = settings.Node.Device,
        Size = settings.Node.Size,
        HostId = settings.Node.HostId,
        Listen = settings.Node.Listen,
        AkkaPort = settings.Node.AkkaPort,
        HttpPort = settings.Node.HttpPort,
        NbdPort = settings.Node.NbdPort,
        Seeds = settings.Node.Seeds,
        TlsDirectory = settings.Tls.Directory,
        Insecure = settings.Tls.Insecure,
        LogLevel = settings.Node.LogLevel.ToString().Replace("Level", "").ToLowerInvariant(),
        ConfigFile = configFile,
    };

    /// <summary>The engine's settings.</summary>
    /// <param name="log">What the engine did (info).</param>
    /// <param name="logError">What the engine cannot go on from (a failed device); null: <paramref name="log"/>.</param>
    public static LogStoreOptions ToStoreOptions(CloudFsSettings settings, Action<string>? log, Action<string>? logError = null) => new()
    {
        Path = settings.Node.Device,
        CreateSize = settings.Node.Size,
        HostId = settings.Node.HostId,
        SegmentSize = settings.Log.SegmentSize,
        CheckpointInterval = settings.Log.CheckpointInterval,
        CheckpointBytes = settings.Log.CheckpointBytes,
        KeyFilePath = settings.Log.KeyFile,
        DirectIo = settings.Log.DirectIo,
        CachedReads = settings.Log.CachedReads,
        CompactionThreshold = settings.Compaction.Threshold,
        CompactionReserve = settings.Compaction.Reserve,
        CompactionLowWater = settings.Compaction.LowWater,
        AutoCompaction = settings.Compaction.Enabled,
        SpaceWaitLimit = settings.Compaction.MaxWait,
        RetentionTime = settings.Compaction.Retention,
        Log = log,
        LogError = logError,
    };

    /// <summary>"IP" or "IP:PORT" (akka port, default the built-in cloudfs.akka-port, 4053) as the address of a cloudfs node: akka.tcp://, or
    /// akka.ssl.tcp:// for a cluster whose remoting runs over TLS.</summary>
    public static string SeedAddress(string seed, bool tls = false)
    {
        var (host, port) = SplitHostPort(seed, CloudFsSettings.Default.Node.AkkaPort);
        return $"{Security.RemotingTls.Scheme(tls)}://cloudfs@{host}:{port}";
    }

    public static (string Host, int Port) SplitHostPort(string text, int defaultPort)
    {
        text = text.Trim();
        if (text.Length == 0) throw new FormatException("an empty address was given");
        var colon = text.LastIndexOf(':');
        if (colon < 0) return (text, defaultPort);
        if (!int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is <= 0 or > 65535)
            throw new FormatException($"'{text}' is not IP[:PORT]");
        return (text[..colon], port);
    }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
