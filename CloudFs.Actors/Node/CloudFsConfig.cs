// Loads the node's HOCON: the embedded hocon/cloudfs.conf, an optional file over it, and the flags over both.
using System.Globalization;
using Akka.Configuration;
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
    public static Config Build(NodeOptions options)
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

        // Akka's own settings follow the cloudfs ones, so a config file may set either.
        // With a certificate directory remoting runs over TLS (CloudFsNode adds the certificate), and its addresses
        // become akka.ssl.tcp://: seeds must be named with the scheme the members really have.
        var remotingTls = config.GetString("cloudfs.tls.directory", "").Length > 0;
        var seeds = config.GetStringList("cloudfs.seeds", []).Select(s => Quote(SeedAddress(s, remotingTls)));
        var akka = string.Join('\n',
            remotingTls ? Security.RemotingTls.EnableSsl : "",
            $"akka.remote.dot-netty.tcp.hostname = {Quote(config.GetString("cloudfs.listen"))}",
            $"akka.remote.dot-netty.tcp.port = {config.GetInt("cloudfs.akka-port")}",
            $"akka.cluster.seed-nodes = [{string.Join(", ", seeds)}]",
            $"akka.loglevel = {AkkaLevel(config.GetString("cloudfs.log-level", "info"))}",
            $"akka.cluster.sharding.passivate-idle-entity-after = {Quote(config.GetString("cloudfs.volumes.passivate-idle-after"))}");
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
    private static string AkkaLevel(string level) => NodeLogger.ParseLevel(level) switch
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
    /// with (a different id for a formatted device is still refused when the log opens).
    /// </summary>
    public static Config WithHostRole(Config config)
    {
        var given = config.GetString("cloudfs.host-id", "");
        var id = given.Length > 0 ? given : (LogStore.PeekHostId(config.GetString("cloudfs.device")) ?? Id160.Random()).ToString();
        var roles = config.GetStringList("akka.cluster.roles", []).Where(r => !r.StartsWith(HostRolePrefix, StringComparison.Ordinal))
            .Append(HostRolePrefix + id.ToLowerInvariant());
        return ConfigurationFactory.ParseString(
                $"cloudfs.host-id = \"{id}\"\nakka.cluster.roles = [{string.Join(", ", roles.Select(Quote))}]")
            .WithFallback(config);
    }

    /// <summary>The NodeOptions a config stands for (what the node really runs with).</summary>
    public static NodeOptions ToOptions(Config config, string? configFile)
    {
        var host = config.GetString("cloudfs.host-id", "");
        return new NodeOptions
        {
            DevicePath = config.GetString("cloudfs.device"),
            Size = config.GetByteSize("cloudfs.size") ?? new NodeOptions().Size,
            HostId = string.IsNullOrEmpty(host) ? null : Id160.Parse(host),
            Listen = config.GetString("cloudfs.listen"),
            AkkaPort = config.GetInt("cloudfs.akka-port"),
            HttpPort = config.GetInt("cloudfs.http-port"),
            NbdPort = config.GetInt("cloudfs.nbd-port"),
            Seeds = config.GetStringList("cloudfs.seeds", []).ToArray(),
            TlsDirectory = config.GetString("cloudfs.tls.directory", "") is { Length: > 0 } tls ? tls : null,
            Insecure = config.GetBoolean("cloudfs.tls.insecure", false),
            LogLevel = config.GetString("cloudfs.log-level", "info"),
            ConfigFile = configFile,
        };
    }

    /// <summary>The engine's settings from the cloudfs { } section.</summary>
    /// <param name="log">What the engine did (info).</param>
    /// <param name="logError">What the engine cannot go on from (a failed device); null: <paramref name="log"/>.</param>
    public static LogStoreOptions ToStoreOptions(Config config, Action<string>? log, Action<string>? logError = null)
    {
        var options = ToOptions(config, null);
        var keyFile = config.GetString("cloudfs.key-file", "");
        return new LogStoreOptions
        {
            Path = options.DevicePath,
            CreateSize = options.Size,
            HostId = options.HostId,
            SegmentSize = (int)(config.GetByteSize("cloudfs.segment-size") ?? 16 << 20),
            CheckpointInterval = config.GetTimeSpan("cloudfs.checkpoint-interval"),
            CheckpointBytes = config.GetByteSize("cloudfs.checkpoint-bytes") ?? 256L << 20,
            KeyFilePath = string.IsNullOrEmpty(keyFile) ? null : keyFile,
            DirectIo = config.GetBoolean("cloudfs.direct-io", true),
            CachedReads = config.GetBoolean("cloudfs.cached-reads"),
            CompactionThreshold = config.GetDouble("cloudfs.compaction.threshold", 0.2),
            CompactionReserve = config.GetDouble("cloudfs.compaction.reserve"),
            CompactionLowWater = config.GetDouble("cloudfs.compaction.low-water"),
            AutoCompaction = config.GetBoolean("cloudfs.compaction.enabled"),
            SpaceWaitLimit = config.GetTimeSpan("cloudfs.compaction.max-wait"),
            Log = log,
            LogError = logError,
        };
    }

    /// <summary>"IP" or "IP:PORT" (akka port, default 4053) as the address of a cloudfs node: akka.tcp://, or
    /// akka.ssl.tcp:// for a cluster whose remoting runs over TLS.</summary>
    public static string SeedAddress(string seed, bool tls = false)
    {
        var (host, port) = SplitHostPort(seed, 4053);
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
