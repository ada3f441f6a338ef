// The CLI's standard streams, injectable so the commands can be tested in process. OutIsTerminal: stdout is a terminal
// (tables with headers and human sizes instead of the plain lines scripts parse); ErrIsTerminal: stderr is one
// (progress lines for long transfers); InputLength: the size of what stdin reads, when it is a file.
namespace CloudFs.Host.Cli;

internal sealed record CliIo(TextWriter Out, TextWriter Err, Func<Stream> OpenStdin, Func<Stream> OpenStdout,
    bool OutIsTerminal = false, bool ErrIsTerminal = false, long? InputLength = null)
{
    public static CliIo Console => new(System.Console.Out, System.Console.Error, System.Console.OpenStandardInput, System.Console.OpenStandardOutput,
        !System.Console.IsOutputRedirected, !System.Console.IsErrorRedirected, StdinFileLength());

    /// <summary>The size of the file stdin reads (`cloudfs apply &lt; FILE`); null for a pipe or a terminal.</summary>
    private static long? StdinFileLength()
    {
        try
        {
            return File.ResolveLinkTarget("/proc/self/fd/0", returnFinalTarget: true) is FileInfo { Exists: true } f ? f.Length : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
