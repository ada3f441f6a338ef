// The commands about versions of a volume: `cloudfs diff VOLUME FROM [TO] [--json]` and `cloudfs protect | unprotect
// VERSION`, answered by a node's management API over HTTP (ManagementHttpClient) from the log of a node holding the volume.
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
        yield return Protect(io, protect: true);
        yield return Protect(io, protect: false);
    }

    /// <summary>`cloudfs protect VERSION` / `cloudfs unprotect VERSION` (SPEC.md).</summary>
    private static Command Protect(CliIo io, bool protect)
    {
        var version = new Argument<string>("VERSION")
        {
            Description = protect ? "The version to keep (of any volume's chain)" : "The protected version to release",
            CustomParser = r => CliOptions.Id(r, "version id").ToString(),
        };
        var json = VolumeCommands.Json("Print the volume's `ls --json` object (protected: its protected versions)");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = protect
            ? new Command("protect",
                "Keep VERSION branchable, diffable and readable (export VOL@VERSION) past cloudfs.retention.time until `cloudfs unprotect`: " +
                "compaction keeps it and the history after it, on every replica, over restarts and failovers. `cloudfs ls --json` lists it.")
            : new Command("unprotect",
                "End the protection of VERSION: once it is older than cloudfs.retention.time, compaction reclaims what only it needed.");
        command.Add(version);
        command.Add(json);
        command.Add(contact);
        command.Add(tls);
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var v = parse.GetValue(version)!;
            var summary = await client.PostAsync<VolumeSummary>($"versions/{v}/{(protect ? "protect" : "unprotect")}", new { }, ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(JsonSerializer.Serialize(summary, ManagementJson.Options));
            else await io.Out.WriteLineAsync($"version {v} of volume {summary.Id} is {(protect ? "protected" : "no longer protected")}");
            return 0;
        });
        return command;
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
        var json = VolumeCommands.Json("Print a JSON object: from, to, ranges (offset, length), bytes, from_size, to_size");
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
            // A resize in between: each version has its own size (ranges past TO's end were dropped by a shrink).
            if (diff.FromSize != diff.ToSize) text.Append(CultureInfo.InvariantCulture, $"size {diff.FromSize} -> {diff.ToSize} bytes\n");
            text.Append(CultureInfo.InvariantCulture, $"total {diff.Bytes} bytes in {diff.Ranges.Count} ranges\n");
            await io.Out.WriteAsync(text, ct);
            return 0;
        });
        return command;
    }
}
