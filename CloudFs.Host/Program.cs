// Entry point of the `cloudfs` executable: hands the arguments to the command tree.
using CloudFs.Host.Cli;

namespace CloudFs.Host;

internal static class Program
{
    public static Task<int> Main(string[] args) => CloudFsCli.RunAsync(args, CliIo.Console);
}
