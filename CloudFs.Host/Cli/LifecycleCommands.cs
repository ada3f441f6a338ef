// A volume's lifecycle after creation: `cloudfs rm`, `cloudfs trash ls | restore | purge`, `cloudfs resize`. Each is one
// HTTP request to a node (ManagementHttpClient; routes in ManagementRoutes); the volume's primary appends the entry, its replicas follow.
using System.CommandLine;
using System.Globalization;
using System.Net.Http;
using System.Text.Json;
using CloudFs.Actors.Management;

namespace CloudFs.Host.Cli;

internal static class LifecycleCommands
{
    public static IEnumerable<Command> Create(CliIo io)
    {
        yield return Remove(io);
        yield return Trash(io);
        yield return Resize(io);
    }

    private static Argument<string> VolumeArgument(string description) =>
        new("VOLUME") { Description = description, CustomParser = r => CliOptions.Volume(r) };

    private static Option<bool> Json(string what) => new("--json") { Description = $"Print {what} as JSON (the fields of `cloudfs ls --json`, and trashed: when it was removed)" };

    private static Command Remove(CliIo io)
    {
        var volume = VolumeArgument("The volume (an id or a name)");
        var force = new Option<bool>("--force") { Description = "Remove it even while a client has it attached read-write over NBD (its writes then fail)" };
        var json = Json("the volume");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("rm",
            "Move a volume to the trash on every replica: it leaves `cloudfs ls` and takes no more writes; `cloudfs trash restore` brings it back, " +
            "and it is purged after cloudfs.trash.keep (default 7 days). Refused while attached read-write over NBD, unless --force. Prints the volume's ls line.")
        {
            volume, force, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            using var response = await client.SendAsync(HttpMethod.Delete,
                $"volumes/{Uri.EscapeDataString(parse.GetValue(volume)!)}{(parse.GetValue(force) ? "?force=1" : "")}", null, ct);
            var removed = await ManagementHttpClient.ReadAsync<VolumeSummary>(response, ct);
            await PrintAsync(io, removed, parse.GetValue(json));
            return 0;
        });
        return command;
    }

    private static Command Trash(CliIo io)
    {
        var command = new Command("trash", "The volumes `cloudfs rm` removed: list them, restore one, or purge them for good.");
        command.Subcommands.Add(TrashList(io));
        command.Subcommands.Add(TrashRestore(io));
        command.Subcommands.Add(TrashPurge(io));
        return command;
    }

    private static Command TrashList(CliIo io)
    {
        var json = Json("a JSON array of the volumes");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("ls", "List the volumes in the trash, one per line: id, name (- when none), size in bytes, when it was removed (ISO 8601, UTC). On a terminal: a table.")
        {
            json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var trash = await client.GetAsync<VolumeSummary[]>("trash", ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(VolumeListFormat.Json(trash));
            else if (io.OutIsTerminal) VolumeTable.WriteTrash(io, trash);
            else foreach (var v in trash) await io.Out.WriteLineAsync(TrashLine(v));
            return 0;
        });
        return command;
    }

    internal static string TrashLine(VolumeSummary v) => string.Join(' ',
        v.Id,
        string.IsNullOrEmpty(v.Name) ? "-" : v.Name,
        v.Size.ToString(CultureInfo.InvariantCulture),
        VolumeSummaryJson.Time(v.TrashedAtUnixMs));

    private static Command TrashRestore(CliIo io)
    {
        var volume = VolumeArgument("The volume in the trash (an id or a name)");
        var json = Json("the volume");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("restore", "Take a volume out of the trash on every replica; it is listed and writable again. Prints its ls line.")
        {
            volume, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var restored = await client.PostAsync<VolumeSummary>($"trash/{Uri.EscapeDataString(parse.GetValue(volume)!)}/restore", null, ct);
            await PrintAsync(io, restored, parse.GetValue(json));
            return 0;
        });
        return command;
    }

    private static Command TrashPurge(CliIo io)
    {
        var volume = new Argument<string?>("VOLUME")
        {
            Description = "The volume in the trash to purge (an id or a name; default: every volume in the trash)",
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = r => r.Tokens.Count == 0 ? null : CliOptions.Volume(r),
        };
        var json = new Option<bool>("--json") { Description = "Print a JSON array of the purged volume ids" };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("purge",
            "Drop volumes in the trash for good, on every host holding them (a host that is down purges its copy when it is back). Prints the purged volume ids.")
        {
            volume, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            using var response = await client.SendAsync(HttpMethod.Delete,
                parse.GetValue(volume) is { } one ? $"trash/{Uri.EscapeDataString(one)}" : "trash", null, ct);
            var purged = await ManagementHttpClient.ReadAsync<string[]>(response, ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(JsonSerializer.Serialize(purged));
            else foreach (var id in purged) await io.Out.WriteLineAsync(id);
            return 0;
        });
        return command;
    }

    private static Command Resize(CliIo io)
    {
        var volume = VolumeArgument("The volume (an id or a name)");
        var size = new Argument<long>("SIZE") { Description = "The new size (bytes, or with K, M, G, T), a multiple of 512", CustomParser = CliOptions.Size };
        var allowShrink = new Option<bool>("--allow-shrink") { Description = "Allow a smaller size: the data beyond it is dropped on every replica" };
        var json = Json("the volume");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("resize",
            "Give a volume a new size on every replica, online: NBD clients see it when they reconnect. Shrinking needs --allow-shrink. Prints its ls line.")
        {
            volume, size, allowShrink, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            var bytes = parse.GetValue(size);
            if (bytes % CloudFs.BlockDevice.LogStore.BlockSize != 0)
                throw new CliException($"the volume size must be a multiple of {CloudFs.BlockDevice.LogStore.BlockSize} bytes", CloudFsCli.ExitUsage);
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var resized = await client.PostAsync<VolumeSummary>($"volumes/{Uri.EscapeDataString(parse.GetValue(volume)!)}/resize",
                new { Size = bytes, AllowShrink = parse.GetValue(allowShrink) }, ct);
            await PrintAsync(io, resized, parse.GetValue(json));
            return 0;
        });
        return command;
    }

    private static Task PrintAsync(CliIo io, VolumeSummary v, bool json) =>
        io.Out.WriteLineAsync(json ? JsonSerializer.Serialize(v, ManagementJson.Options) : VolumeListFormat.Line(v));
}
