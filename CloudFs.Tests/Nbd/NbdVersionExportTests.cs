// The export VOL@VERSION (SPEC.md): one version of a volume, read-only, while the volume takes writes; refused with a
// reason for a version that is unknown or compacted away; with cloudfs:changed-since it describes the ranges written
// between that version and the one it serves.
using System.Buffers.Binary;
using System.Text;
using CloudFs.BlockDevice;
using CloudFs.Host.Nbd;
using Xunit.Abstractions;

namespace CloudFs.Tests.Nbd;

public sealed class NbdVersionExportTests(ITestOutputHelper output)
{
    private const int K = 1024;

    [Fact]
    public async Task A_version_export_reads_that_version_while_the_volume_takes_writes_and_refuses_writes()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(1024 * K);
        await nbd.Gateway.WriteAsync(id, 0, Enumerable.Repeat((byte)1, 8 * K).ToArray(), fua: false);
        var v1 = nbd.Gateway.MarkVersion(id);

        using var old = RawNbdClient.Connect(nbd.Port);
        var (size, flags) = old.Go($"{id}@{v1}");
        Assert.Equal(1024ul * K, size);
        Assert.NotEqual(0, flags & NbdProtocol.FlagReadOnly);

        using var live = RawNbdClient.Connect(nbd.Port);
        Assert.Equal(0, live.Go(id.ToString()).Flags & NbdProtocol.FlagReadOnly);
        live.SendRequest(NbdProtocol.CmdWrite, 1, 0, 8 * K, payload: Enumerable.Repeat((byte)2, 8 * K).ToArray());
        Assert.Equal((0u, 1ul), live.ReceiveSimpleReply());

        old.SendRequest(NbdProtocol.CmdRead, 2, 0, 8 * K);
        Assert.Equal((0u, 2ul), old.ReceiveSimpleReply());
        Assert.All(old.Receive(8 * K), b => Assert.Equal(1, b));
        live.SendRequest(NbdProtocol.CmdRead, 3, 0, 8 * K);
        Assert.Equal((0u, 3ul), live.ReceiveSimpleReply());
        Assert.All(live.Receive(8 * K), b => Assert.Equal(2, b));

        old.SendRequest(NbdProtocol.CmdWrite, 4, 0, 512, payload: new byte[512]);
        Assert.Equal((NbdErrors.EPERM, 4ul), old.ReceiveSimpleReply());
        old.SendRequest(NbdProtocol.CmdTrim, 5, 0, 512);
        Assert.Equal((NbdErrors.EPERM, 5ul), old.ReceiveSimpleReply());
        Assert.All(nbd.Gateway.Peek(id, 0, 512), b => Assert.Equal(2, b));
    }

    [Fact]
    public async Task A_version_export_of_an_unknown_or_compacted_version_is_refused_with_a_reason()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(256 * K);
        var gone = nbd.Gateway.MarkVersion(id);
        nbd.Gateway.CompactVersion(id, gone);
        var unknown = Id160.Random();
        using var client = RawNbdClient.Connect(nbd.Port);

        client.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData($"{id}@{unknown}"));
        var (_, type, message) = client.ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepErrUnknown, type);
        Assert.Contains(unknown.ToString(), Encoding.UTF8.GetString(message));

        client.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData($"{id}@{gone}"));
        (_, type, message) = client.ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepErrPolicy, type);
        Assert.Contains($"version {gone} is no longer available", Encoding.UTF8.GetString(message));

        client.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData($"{id}@nonsense"));
        (_, type, message) = client.ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepErrUnknown, type);
        Assert.Contains("VOLUME@VERSION", Encoding.UTF8.GetString(message));
    }

    [Fact]
    public async Task Qemu_img_copies_a_version_that_differs_from_the_volume_now()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);
        (await ExternalTool.RunAsync("qemu-io", "-f", "raw", nbd.Uri(id), "-c", "write -P 0x11 0 1M")).AssertSuccess();
        var v1 = nbd.Gateway.MarkVersion(id);
        (await ExternalTool.RunAsync("qemu-io", "-f", "raw", nbd.Uri(id), "-c", "write -P 0x22 512k 1M")).AssertSuccess();
        var uri = $"nbd://127.0.0.1:{nbd.Port}/{id}@{v1}";
        var read = (await ExternalTool.RunAsync("qemu-io", "-r", "-f", "raw", uri, "-c", "read -P 0x11 0 1M", "-c", "read -P 0 1M 1M")).AssertSuccess();
        Assert.DoesNotContain("Pattern verification failed", read.Stdout);
        (await ExternalTool.RunAsync("nbdinfo", "--is", "readonly", uri)).AssertSuccess();
    }
}
