// `cloudfs mount DIR`: a POSIX namespace of the cluster's volumes (docs/MOUNT.md). DIR/<volume id or name> appears on
// first access, a link to that volume's ext4 file system (on a loop device over the volume's NBD export through the contacted
// node, nbdfuse). Runs until DIR is unmounted (umount, fusermount3 -u) or it gets SIGTERM/SIGINT; then every volume
// is unmounted, flushed and detached.
using System.CommandLine;
using System.Runtime.InteropServices;
using CloudFs.Actors.Management;
using CloudFs.Host.Mount;

namespace CloudFs.Host.Cli;

internal static class MountCommand
{
    public const int DefaultNbdPort = 10809;

    public static Command Create(CliIo io)
    {
        var dir = new Argument<string>("DIR") { Description = "An empty directory: DIR/<volume id or name> appears on first access" };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var nbdPort = new Option<int>("--nbd-port")
        {
            Description = $"The contacted node's NBD port [default: {DefaultNbdPort}]",
            HelpName = "PORT",
            DefaultValueFactory = _ => DefaultNbdPort,
        };
        var command = new Command("mount", "Serve the cluster's volumes as file systems under DIR until DIR is unmounted or SIGTERM.") { dir, contact, tls, nbdPort };
        command.SetAction(async (parse, ct) =>
        {
            var directory = Path.GetFullPath(parse.GetValue(dir)!);
            if (!Directory.Exists(directory)) throw new CliException($"{directory} is not a directory");
            if (VolumeMount.IsMountPoint(directory)) throw new CliException($"{directory} is mounted already");
            var contacts = parse.GetValue(contact)!;
            var tlsDirectory = parse.GetValue(tls);
            var port = parse.GetValue(nbdPort);
            var certificates = tlsDirectory is null ? null : Path.GetFullPath(tlsDirectory);
            VolumeExport ExportOf(string volume) => new(contacts[0].Host, port, volume, certificates);

            using var client = ManagementHttpClient.Create(contacts, tlsDirectory);
            async Task<VolumeSummary?> Find(string name)
            {
                try { return await client.GetAsync<VolumeSummary>($"volumes/{Uri.EscapeDataString(name)}/info", CancellationToken.None); }
                catch (CliException) { return null; }
            }
            void Log(string line)
            {
                lock (io) io.Err.WriteLine($"cloudfs mount: {line}");
            }

            var staging = Path.Combine("/run/cloudfs", $"mount-{Environment.ProcessId}");
            await using var volumes = new VolumeMounts(Find, ExportOf, staging, "/run/cloudfs/volume-locks", Log);
            using var root = new FuseDirectory(directory, volumes.ResolveAsync, Log);
            try { root.Mount(); }
            catch (MountRefusedException e) { throw new CliException(e.Message); }
            void Stop(PosixSignalContext signal)
            {
                signal.Cancel = true;
                root.Unmount();
            }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            var serving = root.RunAsync();
            await io.Out.WriteLineAsync($"cloudfs: mounted {directory} (volumes appear as {directory}/<volume id or name>)");
            await io.Out.FlushAsync(CancellationToken.None);
            await serving;
            root.Unmount();
            await volumes.DisposeAsync();
            try { Directory.Delete(staging); } catch (IOException) { }
            Log($"{directory} unmounted");
            return 0;
        });
        return command;
    }
}
