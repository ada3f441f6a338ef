// The volume commands of the cluster client: newdisk, ls, info, branch (through ManagementClient).
using System.CommandLine;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class VolumeCommands
{
    public const long DefaultVolumeSize = 8L << 30;

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
            replicas, size, mode, name, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            var bytes = parse.GetValue(size) ?? DefaultVolumeSize;
            if (bytes % LogStore.BlockSize != 0)
                throw new CliException($"the volume size must be a multiple of {LogStore.BlockSize} bytes", CloudFsCli.ExitUsage);
            var request = new CreateVolume(parse.GetValue(replicas), bytes, parse.GetValue(mode), parse.GetValue(name));
            var created = await ManagementCall.AskAsync<VolumeCreated>(parse.GetValue(contact)!, parse.GetValue(tls), request, TimeSpan.FromSeconds(60), ct);
            foreach (var host in created.Hosts) await io.Err.WriteLineAsync($"{host.HostId} {host.Address}");
            await io.Out.WriteLineAsync(created.VolumeId);
            return 0;
        });
        return command;
    }

    private static Command List(CliIo io)
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array of objects (id, size, mode, primary, replicas, version, name, health, parent)" };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("ls", "List volumes, one per line: id, size in bytes, mode, primary host id (- when none), replica host ids, current version id, name (- when none), health, parent version (- unless a branch).")
        {
            json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            var list = await ManagementCall.AskAsync<VolumeList>(parse.GetValue(contact)!, parse.GetValue(tls), new ListVolumes(), ManagementCall.DefaultTimeout, ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(VolumeListFormat.Json(list.Volumes));
            else foreach (var v in list.Volumes) await io.Out.WriteLineAsync(VolumeListFormat.Line(v));
            return 0;
        });
        return command;
    }

    private static Command Info(CliIo io)
    {
        var id = new Argument<string>("VOLUME") { Description = "The volume (an id or a name)", CustomParser = r => CliOptions.Volume(r) };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("info", "Print the volume's current version id.") { id, contact, tls };
        command.SetAction(async (parse, ct) =>
        {
            var volume = await ManagementCall.AskAsync<VolumeSummary>(parse.GetValue(contact)!, parse.GetValue(tls), new GetVolume(parse.GetValue(id)!), ManagementCall.DefaultTimeout, ct);
            await io.Out.WriteLineAsync(volume.Version);
            return 0;
        });
        return command;
    }

    private static Command Branch(CliIo io)
    {
        var version = new Argument<string>("VERSION") { Description = "The version to branch from, or a volume (an id or a name): its current version", CustomParser = r => CliOptions.Volume(r, "version or volume id") };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("branch", "Create a writable volume from a version (a volume id: its current version); prints the new volume id.") { version, contact, tls };
        command.SetAction(async (parse, ct) =>
        {
            var created = await ManagementCall.AskAsync<VolumeCreated>(parse.GetValue(contact)!, parse.GetValue(tls), new BranchVolume(parse.GetValue(version)!), TimeSpan.FromSeconds(60), ct);
            foreach (var host in created.Hosts) await io.Err.WriteLineAsync($"{host.HostId} {host.Address}");
            await io.Out.WriteLineAsync(created.VolumeId);
            return 0;
        });
        return command;
    }
}
