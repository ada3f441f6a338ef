// A TestKit whose ActorSystem has the CloudFS persistence plugins over a real LogStore on a temp file,
// published through CloudFsStorage as the node would; the store and its directory go away with the test.
using Akka.Configuration;
using CloudFs.Actors.Node;
using CloudFs.Actors.Persistence;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public abstract class StoreTestKit : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config LocalConfig = ConfigurationFactory.ParseString("""
        akka.actor.provider = local
        akka.loglevel = WARNING
        # The machine running the suite is shared and slow at times; these are upper bounds, not sleeps.
        akka.test.single-expect-default = 15s
        """).WithFallback(CloudFsConfig.Default());

    /// <summary>A cluster ActorSystem on an ephemeral loopback port that joins no one: a node that is not (yet) a member.</summary>
    protected const string UnjoinedCluster = """
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        akka.cluster.seed-nodes = []
        """;

    protected StoreTestKit(string name, string? config = null)
        : this(name, Directory.CreateTempSubdirectory("cloudfs-actors-").FullName, config) { }

    private StoreTestKit(string name, string dir, string? config)
        : base(config is null ? LocalConfig : ConfigurationFactory.ParseString(config).WithFallback(LocalConfig), name)
    {
        Dir = dir;
        Store = LogStore.Open(StoreOptions(dir));
        CloudFsStorage.Get(Sys).SetStore(Store, DevicePath);
    }

    protected string Dir { get; }
    protected string DevicePath => Path.Combine(Dir, "log");
    protected LogStore Store { get; }

    public static LogStoreOptions StoreOptions(string dir) => new()
    {
        Path = Path.Combine(dir, "log"),
        CreateSize = 64 << 20,
        SegmentSize = 1 << 20, // small: an entry of the largest size does not fit, the actor splits to fit
        CheckpointBytes = long.MaxValue,
        CheckpointInterval = TimeSpan.FromHours(1),
    };

    protected Task<VolumeInfo> CreateVolumeAsync(long size = 16 << 20, VolumeMode mode = VolumeMode.Async) =>
        Store.CreateVolumeAsync(size, mode, [Store.HostId]);

    protected static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    protected override void AfterAll()
    {
        base.AfterAll();
        Store.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
