// A refusal of the CLI: one clear sentence for stderr and the exit status that goes with it.
namespace CloudFs.Host.Cli;

internal sealed class CliException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
