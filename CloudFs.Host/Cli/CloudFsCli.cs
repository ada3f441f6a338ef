// The `cloudfs` command tree (System.CommandLine): parses, reports usage errors in one sentence,
// and turns every failure of a command into "cloudfs: <reason>" on stderr with a non-zero exit.
using System.CommandLine;
using System.Net.Http;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class CloudFsCli
{
    public const int ExitUsage = 2;

    public static RootCommand Build(CliIo io)
    {
        var root = new RootCommand("CloudFS: replicated, versioned virtual disks served over NBD and HTTP.");
        root.Subcommands.Add(NodeCommand.Create(io));
        root.Subcommands.Add(NukeCommand.Create(io));
        root.Subcommands.Add(CertCommands.Create(io));
        foreach (var c in VolumeCommands.Create(io)) root.Subcommands.Add(c);
        foreach (var c in VersionCommands.Create(io)) root.Subcommands.Add(c);
        root.Subcommands.Add(StatusCommand.Create(io));
        root.Subcommands.Add(MountCommand.Create(io));
        root.Subcommands.Add(DetachCommand.Create(io));
        foreach (var c in LifecycleCommands.Create(io)) root.Subcommands.Add(c);
        foreach (var c in StreamCommands.Create(io)) root.Subcommands.Add(c);
        foreach (var c in IntegrityCommands.Create(io)) root.Subcommands.Add(c);
        foreach (var c in ClusterCommands.Create(io)) root.Subcommands.Add(c);
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliIo io, CancellationToken ct = default)
    {
        var root = Build(io);
        // `cloudfs help [COMMAND...]` is `cloudfs [COMMAND...] --help`, as in git and rbd.
        if (args is ["help", .. var topic]) args = [.. topic, "--help"];
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // A word where a command belongs is named, not reported as a missing command.
            if (parse.UnmatchedTokens.FirstOrDefault() is { } unknown && !unknown.StartsWith('-') && parse.CommandResult.Command.Subcommands.Count > 0)
            {
                var at = CommandPath(parse.CommandResult.Command);
                await io.Err.WriteLineAsync($"{at}: unknown command '{unknown}'. See '{at} --help'.");
                await io.Err.FlushAsync(ct);
                return ExitUsage;
            }
            var path = CommandPath(parse.CommandResult.Command);
            var message = parse.Errors[0].Message.TrimEnd('.');
            await io.Err.WriteLineAsync($"{path}: {message}. See '{path} --help'.");
            await io.Err.FlushAsync(ct);
            return ExitUsage;
        }
        var config = new InvocationConfiguration
        {
            Output = io.Out,
            Error = io.Err,
            // `node` stops on SIGINT/SIGTERM itself (PosixSignalRegistration), after a clean shutdown.
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            var code = await parse.InvokeAsync(config, ct);
            await io.Out.FlushAsync(ct);
            return code;
        }
        catch (Exception e)
        {
            // Still one sentence for the operator; the stack trace only on request (it is a bug, not bad input).
            var reason = Describe(e) ?? $"internal error ({e.GetType().Name}: {e.Message}); set CLOUDFS_DEBUG=1 for the stack trace";
            await io.Err.WriteLineAsync($"cloudfs: {reason}");
            if (Describe(e) is null && Environment.GetEnvironmentVariable("CLOUDFS_DEBUG") is "1") await io.Err.WriteLineAsync(e.ToString());
            await io.Err.FlushAsync(CancellationToken.None);
            return e is CliException ce ? ce.ExitCode : 1;
        }
    }

    /// <summary>The one sentence an operator sees for a failure; null for a bug.</summary>
    internal static string? Describe(Exception e) => e switch
    {
        CliException c => c.Message,
        CloudFsException c => c.Message,
        TimeoutException t => t.Message,
        HttpRequestException { InnerException: System.Net.Sockets.SocketException s } =>
            $"cannot reach the node ({s.Message.ToLowerInvariant()}); is `cloudfs node` running there?",
        HttpRequestException { InnerException: System.Security.Authentication.AuthenticationException a } =>
            $"TLS with the node failed ({a.Message.TrimEnd('.')}); --tls must name a certificate directory of the node's cluster, and the node must run with --tls",
        HttpRequestException { InnerException: IOException } h =>
            $"{h.Message.TrimEnd('.')} (a node that runs with --tls answers only HTTPS: pass --tls DIR)",
        HttpRequestException h => h.Message,
        TaskCanceledException => "interrupted",
        OperationCanceledException => "interrupted",
        IOException io => io.Message,
        UnauthorizedAccessException u => u.Message,
        _ => null,
    };

    private static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (var c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
            names.Add(c is RootCommand ? "cloudfs" : c.Name);
        names.Reverse();
        return string.Join(' ', names);
    }
}
