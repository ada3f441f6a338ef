// A node whose log device fails, seen by a real NBD client (nbdsh) through the node's own gateway, volume actor and
// NBD server: writes and flushes get EIO, reads of what was written before go on, and the node reports it once.
using System.Net;
using Akka.Actor;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;
using CloudFs.Host.Nbd;
using CloudFs.Tests.Actors;

namespace CloudFs.Tests.Nbd;

public sealed class NbdDeviceFailureTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudfs-nbd-device-").FullName;
    private readonly List<string> _errors = new();
    private CloudFsNode _node = null!;
    private FaultyDevice _device = null!;

    public async Task InitializeAsync()
    {
        _node = await CloudFsNode.StartAsync(NodeFixture.Options(_dir) with
        {
            AdjustStore = o => o with
            {
                WrapDevice = d => _device = new FaultyDevice(d),
                LogError = m => { lock (_errors) _errors.Add(m); o.LogError?.Invoke(m); },
            },
        }).WaitAsync(TimeSpan.FromSeconds(60));
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Writes_and_flushes_get_EIO_once_the_log_device_fails_and_reads_go_on()
    {
        var created = Assert.IsType<VolumeCreated>(await _node.Management.Ask<IManagementMessage>(new CreateVolume(1, 16 << 20, VolumeMode.Sync), Timeout));
        var volume = Id160.Parse(created.VolumeId);
        await using var server = new NbdServer(_node.Gateway, new IPEndPoint(IPAddress.Loopback, 0), null) { Settings = _node.Settings.Nbd };
        server.Start();
        var uri = $"nbd://127.0.0.1:{server.Port}/{volume}";

        (await ExternalTool.RunAsync("nbdsh", "-u", uri, "-c", "h.pwrite(b'\\x5a' * 65536, 0, nbd.CMD_FLAG_FUA)")).AssertSuccess();
        _device.Fail(DeviceOp.Write);
        var r = await NbdErrorTests.NbdshAsync(uri, """
            print("write", errno_of(lambda: h.pwrite(b"x" * 4096, 65536)))
            print("zero", errno_of(lambda: h.zero(4096, 131072)))
            print("flush", errno_of(lambda: h.flush()))
            print("read", h.pread(65536, 0) == b"\x5a" * 65536)
            """);
        Assert.Equal("EIO", r["write"]);
        Assert.Equal("EIO", r["zero"]);
        Assert.Equal("EIO", r["flush"]);
        Assert.Equal("True", r["read"]);
        var line = Assert.Single(_errors);
        Assert.Contains(Path.Combine(_dir, "log"), line);
        Assert.Contains("errno 5 ", line);
    }
}
