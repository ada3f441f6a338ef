// Reads the services out of `docker-compose config` (block-style YAML as docker-compose 1.29 prints it): each
// service's command, network addresses, volumes and ports. Just enough YAML for that output, no YAML library.
namespace CloudFs.Tests.EndToEnd;

internal sealed record ComposeService(string Name, List<string> Command, List<string> Addresses, List<string> Volumes, List<string> Ports)
{
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
        var inServices = false;
        foreach (var raw in yaml.Split('\n'))
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

    private static string Unquote(string s) => s.Trim().Trim('\'', '"');
}
