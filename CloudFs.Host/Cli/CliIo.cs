// The CLI's standard streams, injectable so the commands can be tested in process.
namespace CloudFs.Host.Cli;

internal sealed record CliIo(TextWriter Out, TextWriter Err, Func<Stream> OpenStdin, Func<Stream> OpenStdout)
{
    public static CliIo Console => new(System.Console.Out, System.Console.Error, System.Console.OpenStandardInput, System.Console.OpenStandardOutput);
}
