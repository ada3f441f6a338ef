// Reads the services out of `docker-compose config` (block-style YAML as docker-compose 1.29 prints it): each
// service's entrypoint, command, healthcheck, network addresses, volumes, ports and the conditions it depends on. Just enough YAML
// for that output, no YAML library.
namespace CloudFs.Tests.EndToEnd;

internal sealed record ComposeService(string Name, List<string> Command, List<string> Addresses, List<string> Volumes, List<string> Ports)
{
    public List<string> Entrypoint { get; } = [];
    /// <summary>The healthcheck's test (["CMD-SHELL", "…"]), empty when there is none.</summary>
    public List<string> Healthcheck { get; } = [];
    /// <summary>Service name → condition ("service_started" when none is printed).</summary>
    public Dictionary<string, string> DependsOn { get; } = [];

    /// <summary>The value after <paramref name="flag"/> in the command, or null when absent.</summary>
    public string? Option(string flag)
    {
        var i = Command.IndexOf(flag);
        return i >= 0 && i + 1 < Command.Count ? Command[i + 1] : null;
    }
}

internal static class ComposeServices
{
    public static List<ComposeService> Parse(string yaml)
    {
        var services = new List<ComposeService>();
        ComposeService? current = null;
        string? section = null; // the service's key being read (command, volumes, ports, networks)
        string? dependency = null; // the service named last under depends_on
        var inServices = false;
        foreach (var raw in JoinQuotedScalars(yaml.Split('\n')))
        {
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            var indent = line.Length - line.TrimStart().Length;
            var text = line.Trim();
            if (indent == 0) { inServices = text == "services:"; current = null; continue; }
            if (!inServices) continue;
            if (indent == 2 && text.EndsWith(':'))
            {
                current = new ComposeService(text.TrimEnd(':'), [], [], [], []);
                services.Add(current);
                section = null;
                continue;
            }
            if (current is null) continue;
            // A key of the service; its list items may sit at the same indentation ("command:\n    - node").
            if (indent == 4 && !text.StartsWith("- ", StringComparison.Ordinal)) { section = text.Split(':')[0]; continue; }
            switch (section)
            {
                case "entrypoint" when text.StartsWith("- ", StringComparison.Ordinal):
                    current.Entrypoint.Add(Unquote(text[2..])); break;
                case "depends_on" when text.StartsWith("- ", StringComparison.Ordinal):
                    current.DependsOn[Unquote(text[2..])] = "service_started"; break;
                case "depends_on" when indent == 6 && text.EndsWith(':'):
                    dependency = text.TrimEnd(':');
                    current.DependsOn[dependency] = "service_started";
                    break;
                case "depends_on" when text.StartsWith("condition:", StringComparison.Ordinal) && dependency is not null:
                    current.DependsOn[dependency] = text["condition:".Length..].Trim(); break;
                case "healthcheck" when text.StartsWith("- ", StringComparison.Ordinal):
                    current.Healthcheck.Add(Unquote(text[2..])); break;
                // A long plain scalar folded onto the next line, deeper than its "- ".
                case "healthcheck" when indent > 6 && current.Healthcheck.Count > 0:
                    current.Healthcheck[^1] += " " + text; break;
                case "command" when text.StartsWith("- ", StringComparison.Ordinal):
                    current.Command.Add(Unquote(text[2..])); break;
                case "volumes" when text.StartsWith("- ", StringComparison.Ordinal):
                    current.Volumes.Add(Unquote(text[2..])); break;
                case "ports" when text.StartsWith("- ", StringComparison.Ordinal):
                    current.Ports.Add(Unquote(text[2..])); break;
                case "ports" when text.StartsWith("target:", StringComparison.Ordinal):
                    current.Ports.Add(text["target:".Length..].Trim()); break;
                case "networks" when text.StartsWith("ipv4_address:", StringComparison.Ordinal):
                    current.Addresses.Add(text["ipv4_address:".Length..].Trim()); break;
            }
        }
        return services;
    }

    private static string Unquote(string s)
    {
        s = s.Trim();
        if (s.Length >= 2 && s[0] == '"' && s[^1] == '"')
            return s[1..^1].Replace("\\n", "\n", StringComparison.Ordinal).Replace("\\\"", "\"", StringComparison.Ordinal);
        return s.Trim('\'', '"');
    }

    /// <summary>
    /// Joins a double-quoted scalar that docker-compose folded over several lines (a script) back into one line:
    /// a line ending in '\' continues without a space, and a leading "\ " keeps its space.
    /// </summary>
    private static IEnumerable<string> JoinQuotedScalars(IEnumerable<string> lines)
    {
        string? open = null;
        foreach (var raw in lines)
        {
            var line = raw.TrimEnd('\r');
            if (open is null)
            {
                var item = line.TrimStart();
                if (item.StartsWith("- \"", StringComparison.Ordinal) && !ClosesQuote(item[3..])) { open = line; continue; }
                yield return line;
                continue;
            }
            var next = line.TrimStart();
            if (next.StartsWith("\\ ", StringComparison.Ordinal)) next = next[1..];
            open = open.EndsWith('\\') ? open[..^1] + next : open + " " + next;
            if (ClosesQuote(next)) { yield return open; open = null; }
        }
        if (open is not null) yield return open;
    }

    /// <summary>True when <paramref name="text"/> ends with a '"' that is not escaped.</summary>
    private static bool ClosesQuote(string text)
    {
        if (!text.EndsWith('"')) return false;
        var backslashes = 0;
        for (var i = text.Length - 2; i >= 0 && text[i] == '\\'; i--) backslashes++;
        return backslashes % 2 == 0;
    }
}
