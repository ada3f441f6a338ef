// `cloudfs node`: turns the flags into NodeOptions and runs the node until SIGINT/SIGTERM.
using System.CommandLine;
using System.Net;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.Host.Node;

namespace CloudFs.Host.Cli;

internal static class NodeCommand
{
    public static Command Create(CliIo io)
    {
        // The defaults are hocon/cloudfs.conf's, read only when `node` runs or shows its help: every other command is a
        // process of its own, and reading the settings was a third of what `cloudfs ls` cost (BENCHMARKS.md, "CLI start-up").
        var defaults = new Lazy<NodeOptions>(() => new NodeOptions());
        var device = new Option<string>("--device")
        {
            Description = "The log: a regular file (created sparse when missing) or a raw block device",
            HelpName = "PATH",
            DefaultValueFactory = _ => defaults.Value.DevicePath,
        };
        var size = new Option<ByteSize>("--size")
        {
            Description = "Size of a log file created on first use (bytes, or with K, M, G, T)",
            HelpName = "SIZE",
            DefaultValueFactory = _ => new ByteSize(defaults.Value.Size),
            CustomParser = r => new ByteSize(CliOptions.Size(r)),
        };
        var hostId = new Option<Id160?>("--host-id")
        {
            Description = "This host's id (40 hex); generated once and kept in the device header when omitted",
            HelpName = "HEX40",
            CustomParser = r => CliOptions.Id(r, "host id"),
        };
        var listen = new Option<IPAddress?>("--listen")
        {
            Description = "The IP address every port binds to",
            HelpName = "IP",
            DefaultValueFactory = _ => IPAddress.Parse(defaults.Value.Listen),
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (CliOptions.TryParseIp(text, out var ip)) return ip;
                r.AddError($"'{text}' is not an IP address");
                return IPAddress.None;
            },
        };
        var seeds = new Option<IReadOnlyList<IPEndPoint>>("--seeds")
        {
            Description = "Other nodes to join, IP[:PORT],... (akka port, default 4053)",
            HelpName = "IP[:PORT],...",
            CustomParser = r => CliOptions.AddressList(r, defaults.Value.AkkaPort),
        };
        var akkaPort = PortOption("--akka-port", "Akka.NET cluster remoting port", () => defaults.Value.AkkaPort);
        var httpPort = PortOption("--http-port", "HTTP port (heads, streams, byte ranges, metrics)", () => defaults.Value.HttpPort);
        var nbdPort = PortOption("--nbd-port", "NBD port (qemu, fio, nbd-client)", () => defaults.Value.NbdPort);
        var tls = new Option<string?>("--tls")
        {
            Description = "A node certificate directory (cloudfs cert issue): HTTPS, and NBD with STARTTLS, with certificates of the cluster authority",
            HelpName = "DIR",
        };
        var insecure = new Option<bool>("--insecure")
        {
            Description = "Allow listening on an address other than loopback without --tls (anyone who reaches it could read and write every volume)",
        };
        var logLevel = new Option<string?>("--log-level")
        {
            Description = "What the node logs: error, warning, info (default: CloudFS's own events, the framework's warnings) or debug (everything)",
            HelpName = "error|warning|info|debug",
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (text is "error" or "warning" or "info" or "debug") return text;
                r.AddError($"'{text}' is not a log level (error, warning, info or debug)");
                return null;
            },
        };
        var config = new Option<FileInfo?>("--config")
        {
            Description = "Extra HOCON layered over the built-in configuration",
            HelpName = "FILE",
        };

        var command = new Command("node", "Start a node: a one-node cluster on 127.0.0.1 unless --seeds names others. Prints one line when ready; stops on SIGINT/SIGTERM.")
        {
            device, size, hostId, listen, seeds, akkaPort, httpPort, nbdPort, tls, insecure, logLevel, config,
        };
        command.SetAction(async (parse, ct) =>
        {
            var configFile = parse.GetValue(config);
            if (configFile is not null && !configFile.Exists)
                throw new CliException($"the configuration file {configFile.FullName} does not exist", CloudFsCli.ExitUsage);
            var options = defaults.Value with
            {
                DevicePath = parse.GetValue(device) ?? defaults.Value.DevicePath,
                Size = parse.GetValue(size).Bytes,
                HostId = parse.GetValue(hostId),
                Listen = parse.GetValue(listen)?.ToString() ?? defaults.Value.Listen,
                Seeds = (parse.GetValue(seeds) ?? []).Select(AddressParser.Format).ToArray(),
                AkkaPort = parse.GetValue(akkaPort),
                HttpPort = parse.GetValue(httpPort),
                NbdPort = parse.GetValue(nbdPort),
                TlsDirectory = parse.GetValue(tls) is { Length: > 0 } dir ? Path.GetFullPath(dir) : null,
                Insecure = parse.GetValue(insecure),
                LogLevel = parse.GetValue(logLevel),
                ConfigFile = configFile?.FullName,
            };
            return await NodeRunner.RunAsync(options, io, ct);
        });
        return command;
    }

    private static Option<int> PortOption(string name, string description, Func<int> defaultPort) => new(name)
    {
        Description = description,
        HelpName = "N",
        DefaultValueFactory = _ => defaultPort(),
        CustomParser = CliOptions.Port,
    };
}
