// Entry point of the engine benchmarks: the first argument names the benchmark, each lives in its own file.
namespace CloudFs.Bench;

internal static class Program
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Benchmarks = new();

    internal static void Register(string name, string help, Func<string[], int> run) => Benchmarks[name] = (help, run);

    public static int Main(string[] args)
    {
        foreach (var t in typeof(Program).Assembly.GetTypes())
            if (t.GetMethod("RegisterSelf", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public) is { } m && t != typeof(Program))
                m.Invoke(null, null);
        if (args.Length == 0 || !Benchmarks.TryGetValue(args[0], out var b))
        {
            Console.Error.WriteLine("usage: CloudFs.Bench <benchmark> [options]");
            foreach (var (name, (help, _)) in Benchmarks.OrderBy(x => x.Key)) Console.Error.WriteLine($"  {name,-14} {help}");
            return args.Length == 0 ? 0 : 2;
        }
        return b.Run(args[1..]);
    }
}
