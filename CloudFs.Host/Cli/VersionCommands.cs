// The commands about versions of a volume: `cloudfs diff VOLUME FROM [TO] [--json]`, answered by a node's management
// API over HTTP (ManagementHttpClient) from the log of a node holding the volume.
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CloudFs.Actors.Management;

namespace CloudFs.Host.Cli;

internal static class VersionCommands
{
    public static IEnumerable<Command> Create(CliIo io)
    {
        yield return Diff(io);
    }

    private static Command Diff(CliIo io)
    {
        var volume = new Argument<string>("VOLUME") { Description = "The volume (an id or a name)", CustomParser = r => CliOptions.Volume(r) };
        var from = new Argument<string>("FROM")
        {
            Description = "The version to compare from: of the volume's own chain or a chain it was branched from (the volume's id: its first version)",
            CustomParser = r => CliOptions.Id(r, "version id").ToString(),
        };
        var to = new Argument<string?>("TO")
        {
            Description = "The version to compare to (default: the volume's current version)",
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = r => r.Tokens.Count == 0 ? null : CliOptions.Id(r, "version id").ToString(),
        };
        var json = VolumeCommands.Json("Print a JSON object: from, to, ranges (offset, length), bytes");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("diff",
            "Print the byte ranges of VOLUME that changed between versions FROM and TO (written, zeroed or trimmed), merged: " +
            "one line per range, offset and length in bytes, then the total.") { volume, from, to, json, contact, tls };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var path = $"volumes/{Uri.EscapeDataString(parse.GetValue(volume)!)}/diff?from={parse.GetValue(from)}";
            if (parse.GetValue(to) is { } t) path += $"&to={t}";
            var diff = await client.GetAsync<VersionDiff>(path, ct);
            if (parse.GetValue(json))
            {
                await io.Out.WriteLineAsync(JsonSerializer.Serialize(diff, ManagementJson.Options));
                return 0;
            }
            var text = new StringBuilder();
            foreach (var r in diff.Ranges)
            {
                text.Append(r.Offset.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(r.Length.ToString(CultureInfo.InvariantCulture)).Append('\n');
                if (text.Length < 1 << 16) continue;
                await io.Out.WriteAsync(text, ct);
                text.Clear();
            }
            text.Append(CultureInfo.InvariantCulture, $"total {diff.Bytes} bytes in {diff.Ranges.Count} ranges\n");
            await io.Out.WriteAsync(text, ct);
            return 0;
        });
        return command;
    }
}
