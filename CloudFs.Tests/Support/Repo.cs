// Where the repository (and its ./cloudfs script) is, found from the test binaries by walking up to CloudFs.sln.
namespace CloudFs.Tests.Support;

internal static class Repo
{
    public static string Root { get; } = Find();
    public static string CloudFsScript => Path.Combine(Root, "cloudfs");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CloudFs.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no CloudFs.sln above {AppContext.BaseDirectory}");
    }
}
