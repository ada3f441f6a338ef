// The NBD server's bounds (cloudfs.nbd): a WRITE payload that stalls, or replies a client never takes in, drop the
// connection and give its bytes back; idle connections stay; connections beyond the cap are closed at once; the
// node's payload budget holds a connection back until bytes come back.
using System.Net;
using System.Net.Sockets;
using CloudFs.Actors.Settings;
using CloudFs.Host.Nbd;

namespace CloudFs.Tests.Nbd;

public sealed class NbdLimitsTests
{
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_stalled_WRITE_payload_drops_its_connection_after_the_timeout_and_its_bytes_come_back_while_idle_connections_stay()
    {
        await using var nbd = NbdTestServer.Start(settings: CloudFsSettings.Default.Nbd with { PayloadTimeout = TimeSpan.FromSeconds(1) });
        var id = nbd.Gateway.AddVolume(4 << 20);
        using var idle = RawNbdClient.Connect(nbd.Port);
        idle.Go(id.ToString());
        using var stalled = RawNbdClient.Connect(nbd.Port);
        stalled.Go(id.ToString());

        // A 2 MiB WRITE of which only 64 KiB ever arrive.
        stalled.SendRequest(NbdProtocol.CmdWrite, 1, 0, 2 << 20, payload: new byte[64 << 10]);
        await Eventually.Until(() => nbd.Server.PayloadBytesInFlight == 2 << 20, PollTimeout, "the payload's bytes to be taken");

        Assert.True(stalled.ServerClosed(), "the server kept the connection whose payload stalled");
        await Eventually.Until(() => nbd.Server.PayloadBytesInFlight == 0 && nbd.Server.ConnectionCount == 1, PollTimeout, "the bytes and the connection to be released");
        Assert.Equal(1, nbd.Server.PayloadTimeouts);
        Assert.Contains(nbd.Log, l => l.Contains("a WRITE payload of 2097152 bytes did not arrive within 1 s (65536 came)"));
        Assert.Equal(0, nbd.Gateway.Writes);

        // The connection that sat idle all along (longer than the timeout) is still served.
        var data = Enumerable.Repeat((byte)0x42, 4096).ToArray();
        idle.SendRequest(NbdProtocol.CmdWrite, 2, 0, 4096, payload: data);
        Assert.Equal((0u, 2ul), idle.ReceiveSimpleReply());
        Assert.Equal(data, nbd.Gateway.Peek(id, 0, 4096));
    }

    [Fact]
    public async Task Large_payload_buffers_go_back_to_the_system_when_their_connection_is_dropped_and_idle_ones_are_kept_only_up_to_the_bound()
    {
        await using var nbd = NbdTestServer.Start(settings: CloudFsSettings.Default.Nbd with { PayloadTimeout = TimeSpan.FromSeconds(1), RetainedPayloadBytes = 4 << 20 });
        var id = nbd.Gateway.AddVolume(64 << 20);
        using var client = RawNbdClient.Connect(nbd.Port);
        client.Go(id.ToString());

        // Eight 2 MiB writes in flight at once: eight mapped buffers, of which the bound keeps two once they are idle.
        var data = new byte[2 << 20];
        for (ulong i = 0; i < 8; i++)
        {
            data.AsSpan().Fill((byte)(i + 1));
            client.SendRequest(NbdProtocol.CmdWrite, i, i * (2ul << 20), 2 << 20, payload: data);
        }
        for (int i = 0; i < 8; i++) Assert.Equal(0u, client.ReceiveSimpleReply().Error);
        for (ulong i = 0; i < 8; i++) Assert.All(nbd.Gateway.Peek(id, (long)(i * (2ul << 20)), 2 << 20), b => Assert.Equal((byte)(i + 1), b));
        await Eventually.Until(() => nbd.Server.PayloadBytesInFlight == 0, PollTimeout, "the writes' bytes to come back");
        Assert.InRange(nbd.Server.PayloadBufferBytes, 2 << 20, 4 << 20);

        // A 16 MiB write of which 64 KiB arrive: its buffer exists while it waits, and is unmapped when it is dropped.
        using var stalled = RawNbdClient.Connect(nbd.Port);
        stalled.Go(id.ToString());
        stalled.SendRequest(NbdProtocol.CmdWrite, 1, 0, 16 << 20, payload: new byte[64 << 10]);
        await Eventually.Until(() => nbd.Server.PayloadBufferBytes >= 16 << 20, PollTimeout, "the stalled payload's buffer to be mapped");
        await Eventually.Until(() => nbd.Server.ConnectionCount == 1, PollTimeout, "the stalled connection to be dropped");
        await Eventually.Until(() => nbd.Server.PayloadBufferBytes <= 4 << 20, PollTimeout, "the stalled payload's buffer to be unmapped");
        Assert.Equal(0, nbd.Server.PayloadBytesInFlight);
    }

    [Fact]
    public async Task A_client_that_takes_in_no_replies_is_dropped_after_the_timeout_and_its_bytes_come_back()
    {
        await using var nbd = NbdTestServer.Start(settings: CloudFsSettings.Default.Nbd with { PayloadTimeout = TimeSpan.FromSeconds(1) });
        var id = nbd.Gateway.AddVolume(64 << 20);
        using var client = RawNbdClient.Connect(nbd.Port);
        client.Go(id.ToString());
        client.Socket.ReceiveBufferSize = 64 << 10;

        // 64 MiB of reads the client never reads back: far more than the socket buffers hold.
        for (ulong i = 0; i < 64; i++) client.SendRequest(NbdProtocol.CmdRead, i, i << 20, 1 << 20);

        await Eventually.Until(() => nbd.Server.ConnectionCount == 0, PollTimeout, "the connection to be dropped");
        await Eventually.Until(() => nbd.Server.PayloadBytesInFlight == 0, PollTimeout, "its bytes to come back");
        Assert.Contains(nbd.Log, l => l.Contains("the client took in no reply for 1 s"));
    }

    [Fact]
    public async Task Connections_beyond_the_cap_are_closed_at_once_until_one_ends()
    {
        await using var nbd = NbdTestServer.Start(settings: CloudFsSettings.Default.Nbd with { MaxConnections = 2 });
        var first = RawNbdClient.Connect(nbd.Port);
        using var second = RawNbdClient.Connect(nbd.Port);
        await Eventually.Until(() => nbd.Server.ConnectionCount == 2, PollTimeout, "two connections");

        using (var third = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 })
        {
            third.Connect(IPAddress.Loopback, nbd.Port);
            var got = 0;
            try { got = third.Receive(new byte[18]); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
            Assert.Equal(0, got); // no greeting: closed
        }
        Assert.Equal(1, nbd.Server.ConnectionsRefused);
        Assert.Contains(nbd.Log, l => l.Contains("2 connections are open (cloudfs.nbd.max-connections"));

        first.Dispose();
        await Eventually.Until(() => nbd.Server.ConnectionCount == 1, PollTimeout, "the first connection to end");
        using var fourth = RawNbdClient.Connect(nbd.Port); // asserts the greeting
    }

    [Fact]
    public async Task The_nodes_payload_budget_holds_a_connection_back_until_another_gives_bytes_back()
    {
        await using var nbd = NbdTestServer.Start(settings: CloudFsSettings.Default.Nbd with { InFlightBytes = 1 << 20 });
        var id = nbd.Gateway.AddVolume(4 << 20);
        using var big = RawNbdClient.Connect(nbd.Port);
        big.Go(id.ToString());
        using var small = RawNbdClient.Connect(nbd.Port);
        small.Go(id.ToString());

        // The first connection takes the node's whole budget with a 1 MiB WRITE whose payload has not all arrived.
        var payload = Enumerable.Repeat((byte)0xb1, 1 << 20).ToArray();
        big.SendRequest(NbdProtocol.CmdWrite, 1, 0, 1 << 20, payload: payload.AsSpan(0, 4096));
        await Eventually.Until(() => nbd.Server.PayloadBytesInFlight == 1 << 20, PollTimeout, "the big write to take the budget");

        // The second one's 4 KiB WRITE waits in line, unanswered.
        var data = Enumerable.Repeat((byte)0x5e, 4096).ToArray();
        small.SendRequest(NbdProtocol.CmdWrite, 2, 2 << 20, 4096, payload: data);
        await Eventually.Until(() => nbd.Server.PayloadBudgetWaiters == 1, PollTimeout, "the small write to wait for the budget");
        Assert.Equal(0, small.Socket.Available);

        // The rest of the big payload arrives: its write completes, gives its bytes back, and the small one proceeds.
        big.Send(payload.AsSpan(4096));
        Assert.Equal((0u, 1ul), big.ReceiveSimpleReply());
        Assert.Equal((0u, 2ul), small.ReceiveSimpleReply());
        Assert.Equal(payload, nbd.Gateway.Peek(id, 0, 1 << 20));
        Assert.Equal(data, nbd.Gateway.Peek(id, 2 << 20, 4096));
        await Eventually.Until(() => nbd.Server.PayloadBytesInFlight == 0 && nbd.Server.PayloadBudgetWaiters == 0, PollTimeout, "every byte to come back");
    }
}
