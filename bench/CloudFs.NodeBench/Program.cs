// Times starting CloudFS nodes in this process, as the tests do (TestCluster): one node alone (`node`), a 3-node
// cluster formed and every member Up (`cluster`), and the Akka steps of a start one by one (`phases`). Each round prints
// the process CPU and the wall it took; the first round includes the JIT (cold), the median of the others is the figure.
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.Singleton;
using CloudFs.Actors.Node;

namespace CloudFs.NodeBench;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var mode = args.FirstOrDefault() ?? "";
        var rounds = Option(args, "--rounds", 5);
        var listen = args.SkipWhile(a => a != "--listen").Skip(1).FirstOrDefault() ?? "127.0.32.1";
        Func<string, Task> round = mode switch
        {
            "node" => dir => StartNodesAsync(dir, listen, 1),
            "cluster" => dir => StartNodesAsync(dir, listen, 3),
            "phases" => dir => PhasesAsync(dir, listen),
            _ => null!,
        };
        if (round is null)
        {
            Console.Error.WriteLine("usage: CloudFs.NodeBench node|cluster|phases [--rounds N] [--listen 127.0.32.x]");
            return 2;
        }
        var cpu = new List<double>();
        var wall = new List<double>();
        for (var i = 0; i < rounds; i++)
        {
            var dir = Directory.CreateTempSubdirectory("cloudfs-nodebench-").FullName;
            try
            {
                var (c, w) = await Measure(() => round(dir));
                Console.WriteLine($"round {i}{(i == 0 ? " (cold)" : "")}: cpu {c:F2} s, wall {w:F2} s");
                if (i > 0) { cpu.Add(c); wall.Add(w); }
            }
            finally { Directory.Delete(dir, recursive: true); }
        }
        if (cpu.Count > 0)
            Console.WriteLine($"RESULT {mode} cpu {Median(cpu):F2} s wall {Median(wall):F2} s (median of {cpu.Count} warm rounds)");
        return 0;
    }

    private static async Task<(double Cpu, double Wall)> Measure(Func<Task> action)
    {
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        await action();
        var took = wall.Elapsed.TotalSeconds;
        process.Refresh();
        return ((process.TotalProcessorTime - cpu).TotalSeconds, took);
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static int Option(string[] args, string name, int fallback) =>
        args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() is { } v ? int.Parse(v) : fallback;

    // The settings TestCluster gives its nodes (CloudFs.Tests/Support/TestCluster.cs).
    private const string TestClusterConfig = "akka.coordinated-shutdown.run-by-actor-system-terminate = off\ncloudfs.placement.tick = 500ms\n" +
        "cloudfs.placement.replace-after = 3s\nakka.cluster.failure-detector.acceptable-heartbeat-pause = 10s\n" +
        "akka.cluster.gossip-interval = 250ms\nakka.cluster.leader-actions-interval = 250ms\nakka.cluster.periodic-tasks-initial-delay = 100ms\n";

    private static NodeOptions Options(string dir, string listen, int i, int? seedPort)
    {
        var config = Path.Combine(dir, "test.conf");
        File.WriteAllText(config, TestClusterConfig);
        return new NodeOptions
        {
            DevicePath = Path.Combine(dir, $"node{i}.log"), Size = 256 << 20, AkkaPort = 0, Listen = listen,
            Seeds = seedPort is { } p ? [$"{listen}:{p}"] : [], ConfigFile = config,
        };
    }

    /// <summary>Starts <paramref name="count"/> nodes as TestCluster does (the first forms the cluster, the others join it
    /// together), waits until every one sees them all Up, then stops them (not timed).</summary>
    private static async Task StartNodesAsync(string dir, string listen, int count)
    {
        var nodes = new List<CloudFsNode>();
        try
        {
            var first = await CloudFsNode.StartAsync(Options(dir, listen, 0, null));
            nodes.Add(first);
            var seed = first.Options.AkkaPort;
            nodes.AddRange(await Task.WhenAll(Enumerable.Range(1, count - 1).Select(i => CloudFsNode.StartAsync(Options(dir, listen, i, seed)))));
            var wait = Stopwatch.StartNew();
            while (!nodes.All(n => Cluster.Get(n.System).State.Members.Count(m => m.Status == MemberStatus.Up) == count
                                   && nodes.All(m => n.ProvenHosts.OfHost(m.HostId) is not null)))
            {
                if (wait.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException("the cluster did not form in 60 s");
                await Task.Delay(5);
            }
        }
        finally
        {
            var stop = Stopwatch.StartNew();
            await Task.WhenAll(nodes.Select(n => n.DisposeAsync().AsTask()));
            Console.Error.WriteLine($"  (stopping took {stop.Elapsed.TotalSeconds:F2} s)");
        }
    }

    /// <summary>The Akka steps of a node's start, each timed alone: the actor system with the node's config, then each
    /// extension the node uses, in the order it uses them (no device, no join).</summary>
    private static async Task PhasesAsync(string dir, string listen)
    {
        var steps = new List<string>();
        async Task<T> Step<T>(string name, Func<T> step)
        {
            T result = default!;
            var (c, w) = await Measure(() => { result = step(); return Task.CompletedTask; });
            steps.Add($"{name} {c:F2}/{w:F2}");
            return result;
        }
        var (config, _) = CloudFsConfig.Load(Options(dir, listen, 0, null));
        var system = await Step("ActorSystem.Create", () => ActorSystem.Create(CloudFsNode.SystemName, config));
        try
        {
            await Step("Cluster.Get", () => Cluster.Get(system));
            await Step("ClusterSingletonManagerSettings", () => ClusterSingletonManagerSettings.Create(system));
            await Step("ClusterSingletonProxySettings", () => ClusterSingletonProxySettings.Create(system));
            await Step("ClusterSharding.Get", () => ClusterSharding.Get(system));
            await Step("ClusterShardingSettings", () => ClusterShardingSettings.Create(system));
            await Step("ClusterClientReceptionist.Get", () => ClusterClientReceptionist.Get(system));
            await Step("Persistence.Instance", () => Akka.Persistence.Persistence.Instance.Apply(system));
            // What one InjectTopLevelFallback does (Settings.RebuildConfig), piece by piece, once everything started.
            var reference = ClusterSharding.DefaultConfig();
            await Step("Inject(sharding reference)", () => { system.Settings.InjectTopLevelFallback(reference); return 0; });
            await Step("Config.WithFallback(sharding reference)", () => system.Settings.Config.WithFallback(reference));
            await Step("ConfigurationFactory.Default", () => Akka.Configuration.ConfigurationFactory.Default());
            // Internal to Akka: reached by reflection (a benchmark only).
            const System.Reflection.BindingFlags Any = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
            var reload = typeof(ActorSystem).Assembly.GetType("Akka.Actor.Internal.ISupportSerializationConfigReload")!.GetMethod("ReloadSerialization")!;
            await Step("ReloadSerialization", () => reload.Invoke(system, null));
            var dispatchers = system.Dispatchers;
            var prerequisites = typeof(Akka.Dispatch.Dispatchers).GetMethod("ReloadPrerequisites", Any)!;
            var mailboxes = system.GetType().GetProperty("Mailboxes", Any)!.GetValue(system)!;
            var ctor = typeof(Akka.Dispatch.DefaultDispatcherPrerequisites).GetConstructors()[0];
            foreach (var (alias, type) in system.Settings.Config.GetConfig("akka.actor.serializers").AsEnumerable())
            {
                var serializerType = Type.GetType(type.GetString());
                if (serializerType is null) continue;
                await Step("new " + alias, () => serializerType.GetConstructor([typeof(ExtendedActorSystem)]) is { } c
                    ? c.Invoke([system]) : Activator.CreateInstance(serializerType, system, system.Settings.Config.GetConfig("akka.actor.serialization-settings." + alias)));
            }
            await Step("ReloadPrerequisites", () => prerequisites.Invoke(dispatchers,
                [ctor.Invoke([system.EventStream, system.Scheduler, system.Settings, mailboxes])]));
        }
        finally { await system.Terminate(); }
        Console.WriteLine("  cpu/wall s: " + string.Join(", ", steps));
        Console.WriteLine($"  control message types (Hyperion known types: these and their arrays): {CloudFs.Actors.Serialization.ControlMessageSerializer.RootTypes.Count}");
    }
}
