// One read-write attachment per volume (docs/ATTACH.md): the second connection that chooses a writable export is served
// read-only and told why; the lease goes back when the holder disconnects, and a holder whose lease is revoked is closed.
using System.Buffers.Binary;
using System.Net;
using System.Text;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Host.Nbd;
using CloudFs.Tests.Doubles;
using CloudFs.Tests.Support;

namespace CloudFs.Tests.Nbd;

public class NbdAttachmentTests
{
    private static (ushort Flags, string Description) GoWithDescription(RawNbdClient client, string export)
    {
        client.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData(export, NbdProtocol.InfoDescription));
        ushort flags = 0;
        var description = "";
        while (true)
        {
            var (_, type, data) = client.ReceiveOptionReply();
            if (type == NbdProtocol.RepAck) return (flags, description);
            Assert.Equal(NbdProtocol.RepInfo, type);
            var info = BinaryPrimitives.ReadUInt16BigEndian(data);
            if (info == NbdProtocol.InfoExport) flags = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
            if (info == NbdProtocol.InfoDescription) description = Encoding.UTF8.GetString(data.AsSpan(2));
        }
    }

    private static bool ReadOnly(ushort flags) => (flags & NbdProtocol.FlagReadOnly) != 0;

    // Two client hosts (loopback addresses of this helper's range).
    private static readonly IPAddress HostA = IPAddress.Parse("127.0.41.11");
    private static readonly IPAddress HostB = IPAddress.Parse("127.0.41.12");

    [Fact]
    public async Task A_second_writable_attach_is_read_only_with_the_reason_until_the_holder_leaves()
    {
        await using var nbd = NbdTestServer.Start();
        var volume = nbd.Gateway.AddVolume(1024 * 1024);
        var first = RawNbdClient.Connect(nbd.Port, from: HostA);
        Assert.False(ReadOnly(first.Go(volume.ToString()).Flags));

        using (var asking = RawNbdClient.Connect(nbd.Port, from: HostB))
        {
            // OPT_INFO takes nothing, and tells what OPT_GO would get.
            asking.SendOption(NbdProtocol.OptInfo, RawNbdClient.GoData(volume.ToString()));
            while (asking.ReceiveOptionReply() is var (_, type, data) && type != NbdProtocol.RepAck)
                if (BinaryPrimitives.ReadUInt16BigEndian(data) == NbdProtocol.InfoExport) Assert.True(ReadOnly(BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10))));
        }
        using (var second = RawNbdClient.Connect(nbd.Port, from: HostB))
        {
            var (flags, description) = GoWithDescription(second, volume.ToString());
            Assert.True(ReadOnly(flags));
            Assert.Contains("read-only: volume " + volume + " is attached read-write by NBD client 127.0.41.11 through node 127.0.0.1:", description);
            second.SendRequest(NbdProtocol.CmdWrite, 1, 0, 512, payload: new byte[512]);
            Assert.Equal(NbdErrors.EPERM, second.ReceiveSimpleReply().Error);
            // Reads are served as ever.
            second.SendRequest(NbdProtocol.CmdRead, 2, 0, 512);
            Assert.Equal(0u, second.ReceiveSimpleReply().Error);
            second.Receive(512);
        }
        Assert.Contains(nbd.Log, l => l.Contains($"serving volume {volume} read-only: volume {volume} is attached read-write by"));

        // The holder leaves: its lease is released, and the next writer gets it.
        first.Dispose();
        await Eventually.Until(() => nbd.Server.ConnectionCount == 0, TimeSpan.FromSeconds(10), "the first connection to end");
        using var third = RawNbdClient.Connect(nbd.Port, from: HostB);
        Assert.False(ReadOnly(third.Go(volume.ToString()).Flags));
    }

    [Fact]
    public async Task Connections_of_one_client_share_its_attachment()
    {
        // Multi-conn clients (nbdcopy, qemu, nbdfuse -C) open several connections to one export.
        await using var nbd = NbdTestServer.Start();
        var volume = nbd.Gateway.AddVolume(1024 * 1024);
        using var first = RawNbdClient.Connect(nbd.Port, from: HostA);
        Assert.False(ReadOnly(first.Go(volume.ToString()).Flags));
        using (var second = RawNbdClient.Connect(nbd.Port, from: HostA))
            Assert.False(ReadOnly(second.Go(volume.ToString()).Flags));
        await Eventually.Until(() => nbd.Server.ConnectionCount == 1, TimeSpan.FromSeconds(10), "the second connection to end");
        // The first still holds it for its client.
        using var other = RawNbdClient.Connect(nbd.Port, from: HostB);
        Assert.True(ReadOnly(other.Go(volume.ToString()).Flags));
    }

    [Fact]
    public async Task A_client_that_reconnects_while_its_release_is_on_the_way_gets_the_volume_writable()
    {
        // qemu-io run twice in a row: the first connection ended, the writer has not answered its release yet when the
        // same client connects again. The new connection waits for the release, then takes the lease: it is not served
        // read-only as if another client held the volume.
        await using var nbd = NbdTestServer.Start();
        var volume = nbd.Gateway.AddVolume(1024 * 1024);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        nbd.Gateway.ReleaseGate = release.Task;
        using (var first = RawNbdClient.Connect(nbd.Port, from: HostA))
            Assert.False(ReadOnly(first.Go(volume.ToString()).Flags));
        await Eventually.Until(() => nbd.Gateway.ReleasesAsked == 1, TimeSpan.FromSeconds(10), "the first connection to end and release its lease");

        using var again = RawNbdClient.Connect(nbd.Port, from: HostA);
        var go = Task.Run(() => again.Go(volume.ToString()));
        // Until the writer answers the release, the connection waits (asked at once, it would be served read-only).
        await Eventually.Until(() => nbd.Server.WaitingForRelease == 1 || go.IsCompleted, TimeSpan.FromSeconds(10), "the reconnection to wait for the release");
        Assert.False(go.IsCompleted, "the reconnection was answered before the release of its previous lease");
        release.SetResult();
        Assert.False(ReadOnly((await go).Flags));
    }

    [Fact]
    public async Task A_client_that_attaches_through_another_node_while_its_release_is_on_the_way_gets_the_volume_writable()
    {
        // nbdinfo through one node, then qemu-io through another at once: the writer still holds the lease of the first
        // connection when the second asks. It is the same client: the second asks again until the release lands.
        var writer = new MemoryVolumeGateway();
        var volume = writer.AddVolume(1024 * 1024);
        await using var nodeA = NbdTestServer.Start(writer);
        await using var nodeB = NbdTestServer.Start(writer);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        writer.ReleaseGate = release.Task;
        using (var first = RawNbdClient.Connect(nodeA.Port, from: HostA))
            Assert.False(ReadOnly(first.Go(volume.ToString()).Flags));
        await Eventually.Until(() => writer.ReleasesAsked == 1, TimeSpan.FromSeconds(10), "the first connection to end and release its lease");

        // The release lands only once the writer has answered the next request: that answer still sees the old lease.
        writer.AfterAcquire = () => release.TrySetResult();
        using var other = RawNbdClient.Connect(nodeB.Port, from: HostA);
        Assert.False(ReadOnly(other.Go(volume.ToString()).Flags));
        // Another client is still refused at once (it is not waited for).
        using var stranger = RawNbdClient.Connect(nodeA.Port, from: HostB);
        Assert.True(ReadOnly(stranger.Go(volume.ToString()).Flags));
    }

    [Fact]
    public async Task A_holder_whose_lease_is_revoked_is_closed()
    {
        await using var nbd = NbdTestServer.Start();
        var volume = nbd.Gateway.AddVolume(1024 * 1024);
        using var holder = RawNbdClient.Connect(nbd.Port);
        Assert.False(ReadOnly(holder.Go(volume.ToString()).Flags));

        var released = await nbd.Gateway.ReleaseAttachmentAsync(new ReleaseAttachment(volume.ToString(), Lease: 0, Force: true));
        Assert.StartsWith("NBD client 127.0.0.1 through node 127.0.0.1:", released.Holder);
        // Its next renewal (a third of the lease's term) is refused: the connection ends rather than write beside a new holder.
        await Eventually.Until(() => nbd.Server.ConnectionCount == 0, WriterAttachments.Term, "the revoked holder to be closed");
        Assert.Contains(nbd.Log, l => l.Contains("closing: volume " + volume + ": this attachment's lease was revoked"));
    }

    // The fenced holder and the next one (loopback addresses of this helper's range).
    private static readonly IPAddress StaleHost = IPAddress.Parse("127.0.51.11");
    private static readonly IPAddress NextHost = IPAddress.Parse("127.0.51.12");

    private static byte[] Sector(byte fill) => Enumerable.Repeat(fill, 512).ToArray();

    [Fact]
    public async Task A_detached_holders_writes_are_refused_at_once_and_the_next_holders_data_stays()
    {
        // A term so long that no renewal tells the old holder during the test: only the fence stops its writes.
        await using var nbd = NbdTestServer.Start(new MemoryVolumeGateway { LeaseTerm = TimeSpan.FromHours(1) });
        var volume = nbd.Gateway.AddVolume(1024 * 1024);
        using var stale = RawNbdClient.Connect(nbd.Port, from: StaleHost);
        Assert.False(ReadOnly(stale.Go(volume.ToString()).Flags));
        stale.SendRequest(NbdProtocol.CmdWrite, 1, 0, 512, payload: Sector(1));
        Assert.Equal(0u, stale.ReceiveSimpleReply().Error);

        // `cloudfs detach --force` (its node is cut off, say): the next holder attaches at once.
        Assert.NotNull((await nbd.Gateway.ReleaseAttachmentAsync(new ReleaseAttachment(volume.ToString(), Lease: 0, Force: true))).Holder);
        using var next = RawNbdClient.Connect(nbd.Port, from: NextHost);
        Assert.False(ReadOnly(next.Go(volume.ToString()).Flags));
        next.SendRequest(NbdProtocol.CmdWrite, 2, 0, 512, payload: Sector(2));
        Assert.Equal(0u, next.ReceiveSimpleReply().Error);

        // The old holder was not told, and still writes: refused, with the reason in the log.
        stale.SendRequest(NbdProtocol.CmdWrite, 3, 0, 512, payload: Sector(3));
        Assert.Equal(NbdErrors.EPERM, stale.ReceiveSimpleReply().Error);
        stale.SendRequest(NbdProtocol.CmdWriteZeroes, 4, 0, 512);
        Assert.Equal(NbdErrors.EPERM, stale.ReceiveSimpleReply().Error);
        stale.SendRequest(NbdProtocol.CmdFlush, 5, 0, 0);
        Assert.Equal(NbdErrors.EPERM, stale.ReceiveSimpleReply().Error);
        Assert.Contains(nbd.Log, l => l.Contains("writes refused: volume " + volume + ": this attachment's lease was revoked"));
        next.SendRequest(NbdProtocol.CmdRead, 6, 0, 512);
        Assert.Equal(0u, next.ReceiveSimpleReply().Error);
        Assert.Equal(Sector(2), next.Receive(512));
    }

    [Fact]
    public async Task A_named_attachment_reconnects_to_its_lease_and_is_refused_once_another_took_the_volume()
    {
        await using var nbd = NbdTestServer.Start();
        var volume = nbd.Gateway.AddVolume(1024 * 1024);
        var first = RawNbdClient.Connect(nbd.Port, from: StaleHost);
        Assert.False(ReadOnly(first.Go(volume + "#mount-1").Flags));
        // Another name on another host is another attachment: read-only.
        using (var other = RawNbdClient.Connect(nbd.Port, from: NextHost))
            Assert.True(ReadOnly(other.Go(volume + "#mount-2").Flags));
        // The connection breaks (nbdkit's retry filter reopens it): the same name gets the volume back, writable.
        first.Dispose();
        await Eventually.Until(() => nbd.Server.ConnectionCount == 0, TimeSpan.FromSeconds(10), "the broken connection to end");
        using (var again = RawNbdClient.Connect(nbd.Port, from: StaleHost))
        {
            Assert.False(ReadOnly(again.Go(volume + "#mount-1").Flags));
            again.SendRequest(NbdProtocol.CmdWrite, 1, 0, 512, payload: Sector(1));
            Assert.Equal(0u, again.ReceiveSimpleReply().Error);
        }
        await Eventually.Until(() => nbd.Server.ConnectionCount == 0, TimeSpan.FromSeconds(10), "the connection to end");

        // Revoked while disconnected (`cloudfs detach --force`): the name is refused at OPT_GO with the reason (not
        // served read-only), so a reconnecting client stops.
        Assert.Contains("attachment mount-1, disconnected",
            (await nbd.Gateway.ReleaseAttachmentAsync(new ReleaseAttachment(volume.ToString(), Lease: 0, Force: true))).Holder);
        using var refused = RawNbdClient.Connect(nbd.Port, from: StaleHost);
        refused.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData(volume + "#mount-1"));
        var (_, type, reason) = refused.ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepErrPolicy, type);
        Assert.Contains("attachment mount-1 lost its read-write lease", Encoding.UTF8.GetString(reason));
        Assert.Contains(nbd.Log, l => l.Contains($"refusing attachment mount-1 of volume {volume}"));
        // A malformed name names no export.
        refused.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData(volume + "#"));
        Assert.Equal(NbdProtocol.RepErrUnknown, refused.ReceiveOptionReply().Type);
    }
}
