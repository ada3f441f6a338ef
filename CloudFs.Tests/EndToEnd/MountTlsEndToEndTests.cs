// `cloudfs mount --tls DIR` against a real node with --tls on 127.0.47.20, with the operator's certificate directory
// the other commands take: the volume is formatted, written and read back over NBD with TLS (nbdkit's nbd plugin under
// nbdfuse, docs/MOUNT.md).
using CloudFs.BlockDevice;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.EndToEnd;

public sealed class MountTlsNode() : OneNodeWithTls("127.0.47.20", "--size", "1G");

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class MountTlsEndToEndTests(MountTlsNode fixture) : IClassFixture<MountTlsNode>
{
    [Fact]
    public async Task A_mount_with_the_operators_certificates_writes_and_reads_back_over_tls()
    {
        Tool.Require("nbdkit");
        var volume = await fixture.Node.NewDiskAsync("128M");
        var data = new byte[1024 * 1024 + 512];
        Random.Shared.NextBytes(data);

        await using (var mount = await MountProcess.StartAsync(fixture.Dir.File("first"), fixture.Address, "--tls", fixture.Operator))
        {
            await Eventually.Until(() => Directory.Exists(mount.PathOf(volume)), TimeSpan.FromSeconds(60), $"{mount.PathOf(volume)} to appear\n{mount.Output}");
            using (var file = new FileStream(mount.PathOf(volume, "data.bin"), FileMode.Create, FileAccess.Write))
            {
                file.Write(data);
                file.Flush(flushToDisk: true);
            }
            Assert.Equal(0, await mount.StopAsync());
        }

        // Mounted afresh: the bytes come from the volume, over TLS again.
        await using var again = await MountProcess.StartAsync(fixture.Dir.File("again"), fixture.Address, "--tls", fixture.Operator);
        await Eventually.Until(() => Directory.Exists(again.PathOf(volume)), TimeSpan.FromSeconds(60), $"{again.PathOf(volume)} to appear\n{again.Output}");
        Assert.Equal(data, await File.ReadAllBytesAsync(again.PathOf(volume, "data.bin")));
        Assert.Equal(0, await again.StopAsync());
    }
}
