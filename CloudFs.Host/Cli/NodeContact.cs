// The node a CLI command talks to: one address per node, HOST[:PORT] naming its HTTP server (default port 8090). A host
// name is resolved when the command connects. The former form, the akka port (IP:4053), is read as that host's HTTP server.
using System.Globalization;
using System.Net;

namespace CloudFs.Host.Cli;

internal sealed record NodeContact(string Host, int Port)
{
    public const string Variable = "CLOUDFS_CONTACT";

    /// <summary>127.0.0.1:8090, or $CLOUDFS_CONTACT.</summary>
    public static readonly NodeContact Default = new(IPAddress.Loopback.ToString(), CliOptions.DefaultHttpPort);

    /// <summary>"HOST" or "HOST:PORT" (IPv6 as "[::1]:PORT" or bare "::1"); a port equal to the default akka port (4053, the
    /// former meaning of --contact) stands for the default HTTP port of that host.</summary>
    public static bool TryParse(string? text, out NodeContact contact)
    {
        contact = Default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim();
        string host;
        var port = CliOptions.DefaultHttpPort;
        if (s.StartsWith('['))
        {
            var close = s.IndexOf(']');
            if (close < 0) return false;
            host = s[1..close];
            var rest = s[(close + 1)..];
            if (rest.Length > 0 && (!rest.StartsWith(':') || !TryPort(rest[1..], out port))) return false;
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6) return false;
        }
        else if (s.Count(c => c == ':') > 1)
        {
            // A bare IPv6 address.
            if (!IPAddress.TryParse(s, out _)) return false;
            host = s;
        }
        else
        {
            var colon = s.IndexOf(':');
            host = colon < 0 ? s : s[..colon];
            if (colon >= 0 && !TryPort(s[(colon + 1)..], out port)) return false;
            if (!IsHostName(host)) return false;
            // Digits and dots only: an IPv4 address, written out in full ("1.2.3" is not a host name either).
            if (host.All(c => char.IsAsciiDigit(c) || c == '.') && !CliOptions.TryParseIp(host, out _)) return false;
        }
        if (port == CliOptions.DefaultAkkaPort) port = CliOptions.DefaultHttpPort;
        contact = new NodeContact(host, port);
        return true;
    }

    /// <summary>A comma-separated list (each tried in turn); every element must parse.</summary>
    public static bool TryParseList(string? text, out IReadOnlyList<NodeContact> contacts, out string bad)
    {
        var list = new List<NodeContact>();
        contacts = list;
        bad = text ?? "";
        if (string.IsNullOrWhiteSpace(text)) return false;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!TryParse(part, out var c)) { bad = part; return false; }
            list.Add(c);
        }
        return list.Count > 0;
    }

    /// <summary>RFC 1123 host name labels (letters, digits, hyphens; not starting or ending with a hyphen).</summary>
    private static bool IsHostName(string host) =>
        host.Length is > 0 and <= 253 && host.Split('.').All(l => l.Length is > 0 and <= 63 && l[0] != '-' && l[^1] != '-' && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is > 0 and < 65536;

    /// <summary>"host:port" or "[v6]:port", as in a URL.</summary>
    public override string ToString() =>
        (Host.Contains(':') ? $"[{Host}]" : Host) + ":" + Port.ToString(CultureInfo.InvariantCulture);
}
