// Loads the node's HOCON: the embedded hocon/cloudfs.conf, an optional file over it, and the flags over both.
using System.Globalization;
using Akka.Configuration;

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
    /// The node's effective config: the flags of <paramref name="options"/> over options.ConfigFile over the embedded defaults.
    /// Seeds become akka.cluster.seed-nodes; with none the node joins itself (done in CloudFsNode, the port may be 0).
    /// </summary>
    public static Config Build(NodeOptions options)
    {
        var config = Default();
        if (options.ConfigFile is { } file)
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"the config file {file} does not exist", file);
            config = ConfigurationFactory.ParseString(File.ReadAllText(file)).WithFallback(config);
        }
        var seeds = options.Seeds.Select(s => $"\"{SeedAddress(s)}\"");
        var flags = string.Join('\n',
            $"cloudfs.device = {Quote(options.DevicePath)}",
            $"cloudfs.size = {options.Size.ToString(CultureInfo.InvariantCulture)}",
            $"cloudfs.listen = {Quote(options.Listen)}",
            $"cloudfs.akka-port = {options.AkkaPort}",
            $"cloudfs.http-port = {options.HttpPort}",
            $"cloudfs.nbd-port = {options.NbdPort}",
            options.HostId is { } host ? $"cloudfs.host-id = \"{host}\"" : "",
            $"akka.remote.dot-netty.tcp.hostname = {Quote(options.Listen)}",
            $"akka.remote.dot-netty.tcp.port = {options.AkkaPort}",
            options.Seeds.Count > 0 ? $"akka.cluster.seed-nodes = [{string.Join(", ", seeds)}]" : "");
        return ConfigurationFactory.ParseString(flags).WithFallback(config);
    }

    /// <summary>"IP" or "IP:PORT" (akka port, default 4053) as the akka.tcp address of a cloudfs node.</summary>
    public static string SeedAddress(string seed)
    {
        var (host, port) = SplitHostPort(seed, 4053);
        return $"akka.tcp://cloudfs@{host}:{port}";
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
