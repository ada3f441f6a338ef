// Options shared by several commands (--contact, --tls, --size) and the typed parsers that refuse bad values at parse time.
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class CliOptions
{
    public const int DefaultAkkaPort = 4053;
    public const int DefaultHttpPort = 8090;

    /// <summary>--contact HOST[:PORT],... (alias --http): the node's HTTP server, one address per node (default
    /// $CLOUDFS_CONTACT, else 127.0.0.1:8090); several are tried in turn.</summary>
    public static Option<IReadOnlyList<NodeContact>> Contact() => new("--contact", "--http")
    {
        Description = $"The node to ask: its HTTP address, HOST[:PORT] (default port {DefaultHttpPort}; default ${NodeContact.Variable}, else 127.0.0.1:{DefaultHttpPort}); " +
                      "several, comma-separated, are tried in turn",
        HelpName = "HOST[:PORT],...",
        DefaultValueFactory = r =>
        {
            if (Environment.GetEnvironmentVariable(NodeContact.Variable) is not { Length: > 0 } text) return [NodeContact.Default];
            if (NodeContact.TryParseList(text, out var list, out var bad)) return list;
            r.AddError($"${NodeContact.Variable}: '{bad}' is not a node address (HOST or HOST:PORT)");
            return [];
        },
        CustomParser = r =>
        {
            var text = string.Join(',', r.Tokens.Select(t => t.Value));
            if (NodeContact.TryParseList(text, out var list, out var bad)) return list;
            r.AddError($"'{bad}' is not a node address (HOST or HOST:PORT)");
            return [];
        },
    };

    /// <summary>--tls DIR for a command that talks to a node (default: $CLOUDFS_TLS); null: plain.</summary>
    public static Option<string?> Tls() => new("--tls")
    {
        Description = "Talk to a cluster that uses TLS, presenting the certificate in DIR (an operator's or a node's; default $CLOUDFS_TLS)",
        HelpName = "DIR",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CLOUDFS_TLS") is { Length: > 0 } dir ? dir : null,
    };

    /// <summary>--size; null when not given (the description names the default in operator units).</summary>
    public static Option<long?> Size(string description) => new("--size")
    {
        Description = description,
        HelpName = "SIZE",
        CustomParser = r => Size(r),
    };

    public static long Size(ArgumentResult r)
    {
        var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (SizeParser.TryParse(text, out var bytes) && bytes > 0) return bytes;
        r.AddError($"'{text}' is not a size (bytes, or a number with K, M, G or T, e.g. 8G)");
        return 0;
    }

    public static Id160 Id(ArgumentResult r, string what)
    {
        var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (Id160.TryParse(text, out var id)) return id;
        r.AddError($"'{text}' is not a {what} (40 hex characters)");
        return default;
    }

    /// <summary>A VOLUME argument: a volume id (40 hex characters, printed lower-case) or a volume name.</summary>
    public static string Volume(ArgumentResult r, string what = "volume id")
    {
        var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (Id160.TryParse(text, out var id)) return id.ToString();
        if (CloudFs.BlockDevice.Volumes.VolumeName.Check(text) is null) return text;
        r.AddError($"'{text}' is not a {what} (40 hex characters) or a volume name");
        return "";
    }

    public static int Port(ArgumentResult r)
    {
        var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536)
            return port;
        r.AddError($"'{text}' is not a port number (1-65535)");
        return 0;
    }

    /// <summary>An IP address written out in full (IPAddress.TryParse alone would take "1.2.3" as 1.2.0.3).</summary>
    public static bool TryParseIp(string text, out IPAddress ip)
    {
        ip = IPAddress.None;
        var full = text.Contains(':') || text.Count(c => c == '.') == 3;
        return full && IPAddress.TryParse(text, out ip!);
    }

    public static IPEndPoint Address(ArgumentResult r, int defaultPort)
    {
        var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (AddressParser.TryParse(text, defaultPort, out var ep)) return ep;
        r.AddError($"'{text}' is not an address (IP or IP:PORT)");
        return null!;
    }

    public static IReadOnlyList<IPEndPoint> AddressList(ArgumentResult r, int defaultPort)
    {
        var text = string.Join(',', r.Tokens.Select(t => t.Value));
        if (AddressParser.TryParseList(text, defaultPort, out var list, out var bad)) return list;
        r.AddError($"'{bad}' is not an address (IP or IP:PORT)");
        return [];
    }
}
