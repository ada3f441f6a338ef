// A class fixture: one node on the class's own loopback address for all of its tests (each test makes its own volume).
namespace CloudFs.Tests.EndToEnd;

public abstract class NodeFixture(string listen) : IAsyncLifetime
{
    internal TempDir Dir { get; } = new();
    internal NodeProcess Node { get; private set; } = null!;
    public string Listen { get; } = listen;

    public async Task InitializeAsync() => Node = await NodeProcess.StartAsync(Listen, Dir.File("node.log"));

    public async Task DisposeAsync()
    {
        if (Node is not null) await Node.DisposeAsync();
        Dir.Dispose();
    }
}
