// One running one-node CloudFsNode (akka port 0, temp device) shared by the tests of a class. Its log is on a
// FaultyDevice around the real file (no faults unless a test asks), so a test can hold or fail the node's I/O.
using CloudFs.Actors.Node;
using CloudFs.BlockDevice.Device;

namespace CloudFs.Tests.Actors;

public sealed class NodeFixture : IAsyncLifetime
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("cloudfs-node-").FullName;
    public CloudFsNode Node { get; private set; } = null!;
    internal FaultyDevice Device { get; private set; } = null!;

    public static NodeOptions Options(string dir) => new()
    {
        DevicePath = Path.Combine(dir, "log"),
        Size = 64 << 20,
        AkkaPort = 0,
        Listen = "127.0.0.1",
    };

    public async Task InitializeAsync()
    {
        Node = await CloudFsNode.StartAsync(Options(Dir) with
        {
            AdjustStore = o => o with { WrapDevice = d => Device = new FaultyDevice(d) },
        }).WaitAsync(TimeSpan.FromSeconds(60));
    }

    public async Task DisposeAsync()
    {
        await Node.DisposeAsync();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
