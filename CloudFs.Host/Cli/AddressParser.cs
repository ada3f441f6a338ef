// Parses the "IP[:PORT]" addresses of --listen, --seeds, --contact and --http, so bad input is refused before anything starts.
using System.Globalization;
using System.Net;

namespace CloudFs.Host.Cli;

internal static class AddressParser
{
    /// <summary>"IP" or "IP:PORT" (IPv6 as "[::1]:PORT"); the port defaults to <paramref name="defaultPort"/>.</summary>
    public static bool TryParse(string? text, int defaultPort, out IPEndPoint endpoint)
    {
        endpoint = null!;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim();
        if (CliOptions.TryParseIp(s, out var bare) && !s.Contains(']', StringComparison.Ordinal))
        {
            endpoint = new IPEndPoint(bare, defaultPort);
            return true;
        }
        var colon = s.LastIndexOf(':');
        if (colon <= 0 || !CliOptions.TryParseIp(s[..colon].Trim('[', ']'), out _)) return false;
        if (!IPEndPoint.TryParse(s, out var parsed) || parsed.Port == 0) return false;
        endpoint = parsed;
        return true;
    }

    /// <summary>A comma-separated list of addresses; every element must parse.</summary>
    public static bool TryParseList(string? text, int defaultPort, out IReadOnlyList<IPEndPoint> endpoints, out string? bad)
    {
        var list = new List<IPEndPoint>();
        endpoints = list;
        bad = null;
        if (string.IsNullOrWhiteSpace(text)) { bad = text ?? ""; return false; }
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!TryParse(part, defaultPort, out var ep)) { bad = part; return false; }
            list.Add(ep);
        }
        if (list.Count == 0) { bad = text; return false; }
        return true;
    }

    /// <summary>"127.0.0.1:4053" or "[::1]:4053": the form Akka addresses and URLs use.</summary>
    public static string Format(IPEndPoint endpoint) =>
        endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{endpoint.Address}]:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{endpoint.Address}:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}";
}
