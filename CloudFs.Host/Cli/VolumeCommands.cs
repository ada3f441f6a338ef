// The volume commands: newdisk, ls, info, branch, answered by a node's management API over HTTP (ManagementHttpClient).
using System.CommandLine;
using System.Text.Json;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class VolumeCommands
{
    public const long DefaultVolumeSize = Http.ManagementRoutes.DefaultVolumeSize;

    public static IEnumerable<Command> Create(CliIo io)
    {
        yield return NewDisk(io);
        yield return List(io);
        yield return Info(io);
        yield return Branch(io);
    }

    private static Command NewDisk(CliIo io)
    {
        var replicas = new Argument<int>("N")
        {
            Description = "Number of replicas (hosts holding the volume)",
            Arity = ArgumentArity.ZeroOrOne,
            DefaultValueFactory = _ => 3,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "3";
                if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 1) return n;
                r.AddError($"'{text}' is not a replica count (a whole number, at least 1)");
                return 0;
            },
        };
        var size = CliOptions.Size("Volume size, thin-provisioned (bytes, or with K, M, G, T) [default: 8G]");
        var mode = new Option<VolumeMode>("--mode")
        {
            HelpName = "sync|async",
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (text is "sync") return VolumeMode.Sync;
                if (text is "async") return VolumeMode.Async;
                r.AddError($"'{text}' is not a mode (sync or async)");
                return VolumeMode.Async;
            },
            Description = "async: a write is acknowledged once appended on the primary; sync: once on a majority of replicas",
        };
        var json = Json("Print the new volume's `ls --json` object (with its hosts) instead of its id");
        var name = new Option<string?>("--name")
        {
            Description = $"A name for the volume, unique in the cluster, accepted wherever a volume id is (up to {CloudFs.BlockDevice.Volumes.VolumeName.MaxLength} letters, digits, '.', '_', '-')",
            HelpName = "NAME",
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (CloudFs.BlockDevice.Volumes.VolumeName.Check(text) is { } error) r.AddError(error);
                return text;
            },
        };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("newdisk", "Create a volume with N replicas (default 3). Prints the chosen hosts to stderr and the new volume id to stdout.")
        {
            replicas, size, mode, name, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            var bytes = parse.GetValue(size) ?? DefaultVolumeSize;
            if (bytes % LogStore.BlockSize != 0)
                throw new CliException($"the volume size must be a multiple of {LogStore.BlockSize} bytes", CloudFsCli.ExitUsage);
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var request = new { Replicas = parse.GetValue(replicas), Size = bytes, Mode = VolumeListFormat.Mode(parse.GetValue(mode)), Name = parse.GetValue(name) };
            using var response = await client.SendAsync(System.Net.Http.HttpMethod.Post, "volumes", request, ct);
            await PrintCreatedAsync(io, response, parse.GetValue(json), ct);
            return 0;
        });
        return command;
    }

    /// <summary>The hosts to stderr and the id to stdout, or with --json the object as the node wrote it.</summary>
    private static async Task PrintCreatedAsync(CliIo io, System.Net.Http.HttpResponseMessage response, bool json, CancellationToken ct)
    {
        var body = await response.Content.ReadAsStringAsync(ct);
        using var created = JsonDocument.Parse(body);
        foreach (var host in created.RootElement.GetProperty("hosts").EnumerateArray())
            await io.Err.WriteLineAsync($"{host.GetProperty("host_id").GetString()} {host.GetProperty("address").GetString()}");
        if (json) await io.Out.WriteAsync(body);
        else await io.Out.WriteLineAsync(created.RootElement.GetProperty("id").GetString());
    }

    internal static Option<bool> Json(string description) => new("--json") { Description = description };

    private static Command List(CliIo io)
    {
        var json = Json("Print a JSON array of objects (id, size, mode, primary, replicas, version, name, health, parent)");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("ls", "List volumes, one per line: id, size in bytes, mode, primary host id (- when none), replica host ids, current version id, name (- when none), health, parent version (- unless a branch). On a terminal: a table with headers and human sizes.")
        {
            json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            // Streamed as the node writes it, page by page: nothing here holds the whole list.
            using var response = await client.SendAsync(System.Net.Http.HttpMethod.Get, "volumes", null, ct);
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            if (parse.GetValue(json))
            {
                await io.Out.FlushAsync(ct);
                await body.CopyToAsync(io.OpenStdout(), ct);
                return 0;
            }
            if (io.OutIsTerminal)
            {
                // A table for people: it needs every row for its column widths.
                var rows = new List<VolumeSummary>();
                await foreach (var v in JsonSerializer.DeserializeAsyncEnumerable<VolumeSummary>(body, ManagementJson.Options, ct))
                    if (v is not null) rows.Add(v);
                VolumeTable.WriteVolumes(io, rows);
                return 0;
            }
            // Lines written in batches: one write per batch, not per volume.
            var lines = new System.Text.StringBuilder();
            var count = 0;
            await foreach (var v in JsonSerializer.DeserializeAsyncEnumerable<VolumeSummary>(body, ManagementJson.Options, ct))
            {
                if (v is null) continue;
                lines.Append(VolumeListFormat.Line(v)).Append('\n');
                if (++count % 512 != 0) continue;
                await io.Out.WriteAsync(lines, ct);
                lines.Clear();
            }
            await io.Out.WriteAsync(lines, ct);
            return 0;
        });
        return command;
    }

    private static Command Info(CliIo io)
    {
        var id = new Argument<string>("VOLUME") { Description = "The volume (an id or a name)", CustomParser = r => CliOptions.Volume(r) };
        var json = Json("Print the volume's `ls --json` object");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("info", "Print the volume's current version id.") { id, json, contact, tls };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var volume = await client.GetAsync<VolumeSummary>($"volumes/{Uri.EscapeDataString(parse.GetValue(id)!)}/info", ct);
            await io.Out.WriteLineAsync(parse.GetValue(json) ? JsonSerializer.Serialize(volume, ManagementJson.Options) : volume.Version);
            return 0;
        });
        return command;
    }

    private static Command Branch(CliIo io)
    {
        var version = new Argument<string>("VERSION") { Description = "The version to branch from, or a volume (an id or a name): its current version", CustomParser = r => CliOptions.Volume(r, "version or volume id") };
        var json = Json("Print the new volume's `ls --json` object (with its hosts) instead of its id");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("branch", "Create a writable volume from a version (a volume id: its current version); prints the new volume id.") { version, json, contact, tls };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            using var response = await client.SendAsync(System.Net.Http.HttpMethod.Post, $"versions/{Uri.EscapeDataString(parse.GetValue(version)!)}/branch", null, ct);
            await PrintCreatedAsync(io, response, parse.GetValue(json), ct);
            return 0;
        });
        return command;
    }
}
