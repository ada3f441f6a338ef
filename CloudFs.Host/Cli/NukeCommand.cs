// `cloudfs nuke PATH`: wipes a device's header and checkpoints so the next `cloudfs node` formats it.
using System.CommandLine;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class NukeCommand
{
    public static Command Create(CliIo io)
    {
        var path = new Argument<string>("PATH") { Description = "The device or log file to wipe" };
        var command = new Command("nuke", "Zero the start of a device or log file so that the next `cloudfs node` formats it. Refuses a device a running node holds.")
        {
            path,
        };
        command.SetAction(async (parse, ct) =>
        {
            var target = parse.GetValue(path)!;
            if (!File.Exists(target) && !Directory.Exists(target) && !target.StartsWith("/dev/", StringComparison.Ordinal))
                throw new CliException($"{target} does not exist");
            if (Directory.Exists(target))
                throw new CliException($"{target} is a directory, not a device or log file");
            LogStore.Nuke(target);
            await io.Err.WriteLineAsync($"cloudfs: {target} wiped; the next `cloudfs node --device {target}` formats it");
            return 0;
        });
        return command;
    }
}
