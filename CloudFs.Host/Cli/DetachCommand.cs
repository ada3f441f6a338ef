// `cloudfs detach VOLUME [--force]`: ends a volume's read-write attachment (docs/ATTACH.md, "Taking an attachment over").
// One request to a node (POST /volumes/VOLUME/detach, DetachRoute), which asks the volume's writer. Without --force only
// an attachment whose holder stopped renewing is ended (refused, with the holder's name, while it renews); --force
// revokes it whoever holds it (that client's connection is closed; the next read-write attachment gets in once it was
// told, or once its lease would have lapsed).
using System.CommandLine;
using System.Net.Http;
using System.Text.Json;

namespace CloudFs.Host.Cli;

internal static class DetachCommand
{
    public static Command Create(CliIo io)
    {
        var volume = new Argument<string>("VOLUME") { Description = "The volume (an id or a name)", CustomParser = r => CliOptions.Volume(r) };
        var force = new Option<bool>("--force")
        {
            Description = "Revoke the attachment even while its holder renews it (a client host that is gone while its connection stays open): that connection is closed",
        };
        var json = new Option<bool>("--json") { Description = "Print {\"volume\", \"detached\"} (who held it; null when nobody did)" };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("detach",
            "End a volume's read-write attachment so that another client can attach it read-write. Refused while its holder " +
            "renews it, unless --force. Prints who held it.")
        {
            volume, force, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var detached = await client.PostAsync<VolumeDetached>(
                $"volumes/{Uri.EscapeDataString(parse.GetValue(volume)!)}/detach{(parse.GetValue(force) ? "?force=1" : "")}", null, ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(JsonSerializer.Serialize(detached, ManagementJson.Options));
            else if (detached.Detached is null) await io.Out.WriteLineAsync($"volume {detached.Volume} was not attached read-write");
            else await io.Out.WriteLineAsync($"volume {detached.Volume}: detached {detached.Detached}");
            return 0;
        });
        return command;
    }
}
