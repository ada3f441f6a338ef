// Traffic no well-behaved client sends, over a raw socket: option garbage, bad magics, unknown commands, truncated
// headers, oversize payloads; and pipelining checked precisely (out-of-order completion, in-flight cap).
using System.Buffers.Binary;
using System.Text;
using CloudFs.BlockDevice;
using CloudFs.Host.Nbd;

namespace CloudFs.Tests.Nbd;

public class NbdRawProtocolTests
{
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Reads 4 KiB at 0 on a fresh connection: proves the node still serves other clients.</summary>
    private static void AssertStillServing(NbdTestServer nbd, Id160 volume)
    {
        using var other = RawNbdClient.Connect(nbd.Port);
        other.Go(volume.ToString());
        other.SendRequest(NbdProtocol.CmdRead, 77, 0, 4096);
        var (error, cookie) = other.ReceiveSimpleReply();
        Assert.Equal((0u, 77ul), (error, cookie));
        other.Receive(4096);
    }

    [Fact]
    public async Task Option_garbage_is_answered_and_haggling_continues()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);

        client.SendOption(4242, "whatever"u8);
        Assert.Equal(NbdProtocol.RepErrUnsup, client.ReceiveOptionReply().Type);

        client.SendOption(NbdProtocol.OptStartTls, default);
        Assert.Equal(NbdProtocol.RepErrUnsup, client.ReceiveOptionReply().Type);

        client.SendOption(NbdProtocol.OptList, "junk"u8);
        Assert.Equal(NbdProtocol.RepErrInvalid, client.ReceiveOptionReply().Type);

        var go = RawNbdClient.GoData(id.ToString(), NbdProtocol.InfoBlockSize);
        client.SendOption(NbdProtocol.OptGo, go.AsSpan(0, go.Length - 1)); // one byte short of its info list
        Assert.Equal(NbdProtocol.RepErrInvalid, client.ReceiveOptionReply().Type);

        var lying = RawNbdClient.GoData(id.ToString());
        BinaryPrimitives.WriteUInt32BigEndian(lying, 100_000); // name length past the option
        client.SendOption(NbdProtocol.OptInfo, lying);
        Assert.Equal(NbdProtocol.RepErrInvalid, client.ReceiveOptionReply().Type);

        client.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData(Id160.Random().ToString()));
        var unknown = client.ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepErrUnknown, unknown.Type);
        Assert.Contains("no volume", Encoding.UTF8.GetString(unknown.Data));

        client.SendOption(NbdProtocol.OptSetMetaContext, new byte[8]); // before structured replies
        Assert.Equal(NbdProtocol.RepErrInvalid, client.ReceiveOptionReply().Type);

        var (size, flags) = client.Go(id.ToString());
        Assert.Equal(1024ul * 1024, size);
        Assert.NotEqual(0, flags & NbdProtocol.FlagCanMultiConn);
        client.SendRequest(NbdProtocol.CmdRead, 1, 0, 512);
        Assert.Equal((0u, 1ul), client.ReceiveSimpleReply());
    }

    [Fact]
    public async Task An_oversized_option_gets_an_error_reply_before_the_connection_closes()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);

        client.SendOption(NbdProtocol.OptGo, "some of it"u8, length: 1u << 30);

        var reply = client.ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepErrTooBig, reply.Type);
        Assert.True(client.ServerClosed());
        AssertStillServing(nbd, id);
    }

    [Fact]
    public async Task A_bad_option_magic_or_unknown_client_flags_end_only_that_connection()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);

        using (var client = RawNbdClient.Connect(nbd.Port))
        {
            client.SendOption(NbdProtocol.OptList, default, magic: 0x1122334455667788);
            Assert.True(client.ServerClosed());
        }
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            socket.Connect(System.Net.IPAddress.Loopback, nbd.Port);
            socket.ReceiveTimeout = 10_000;
            var greeting = new byte[18];
            int got = 0;
            while (got < 18) got += socket.Receive(greeting, got, 18 - got, System.Net.Sockets.SocketFlags.None);
            socket.Send([0, 0, 0x80, 1]); // a client flag the server never offered
            Assert.Equal(0, socket.Receive(new byte[1]));
        }
        AssertStillServing(nbd, id);
    }

    [Fact]
    public async Task Unknown_commands_and_bad_writes_get_EINVAL_with_the_payload_consumed()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);
        client.Go(id.ToString());

        client.SendRequest(99, 1, 0, 4096);
        Assert.Equal((NbdErrors.EINVAL, 1ul), client.ReceiveSimpleReply());

        // Out of range and misaligned writes: their payload must be skipped or the next header would be misread.
        client.SendRequest(NbdProtocol.CmdWrite, 2, 1024 * 1024, 4096, payload: new byte[4096]);
        Assert.Equal((NbdErrors.ENOSPC, 2ul), client.ReceiveSimpleReply()); // proto.md: a write past the end is ENOSPC
        client.SendRequest(NbdProtocol.CmdWrite, 3, 100, 1000, payload: new byte[1000]);
        Assert.Equal((NbdErrors.EINVAL, 3ul), client.ReceiveSimpleReply());
        var oversize = new byte[NbdProtocol.MaximumPayload + 4096];
        client.SendRequest(NbdProtocol.CmdWrite, 4, 0, (uint)oversize.Length, payload: oversize);
        Assert.Equal((NbdErrors.EINVAL, 4ul), client.ReceiveSimpleReply());

        client.SendRequest(NbdProtocol.CmdBlockStatus, 5, 0, 4096); // no meta context selected
        Assert.Equal((NbdErrors.EINVAL, 5ul), client.ReceiveSimpleReply());
        client.SendRequest(NbdProtocol.CmdRead, 6, 0, 4096, flags: 1 << 9); // unknown request flag
        Assert.Equal((NbdErrors.EINVAL, 6ul), client.ReceiveSimpleReply());
        client.SendRequest(NbdProtocol.CmdWrite, 16, 0, 512, flags: NbdProtocol.CmdFlagDf, payload: new byte[512]); // DF is for reads
        Assert.Equal((NbdErrors.EINVAL, 16ul), client.ReceiveSimpleReply());
        client.SendRequest(NbdProtocol.CmdRead, 26, 1024 * 1024 - 512, 1024); // read past the end
        Assert.Equal((NbdErrors.EINVAL, 26ul), client.ReceiveSimpleReply());
        client.SendRequest(NbdProtocol.CmdTrim, 36, 0, 0); // zero length
        Assert.Equal((NbdErrors.EINVAL, 36ul), client.ReceiveSimpleReply());

        var data = Enumerable.Repeat((byte)0x7e, 4096).ToArray();
        client.SendRequest(NbdProtocol.CmdWrite, 7, 8192, 4096, payload: data);
        Assert.Equal((0u, 7ul), client.ReceiveSimpleReply());
        client.SendRequest(NbdProtocol.CmdRead, 8, 8192, 4096);
        Assert.Equal((0u, 8ul), client.ReceiveSimpleReply());
        Assert.Equal(data, client.Receive(4096));
        Assert.All(nbd.Gateway.Peek(id, 0, 8192), b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task A_bad_request_magic_or_a_truncated_header_ends_only_that_connection()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var survivor = RawNbdClient.Connect(nbd.Port);
        survivor.Go(id.ToString());

        using (var client = RawNbdClient.Connect(nbd.Port))
        {
            client.Go(id.ToString());
            client.SendRequest(NbdProtocol.CmdRead, 1, 0, 4096, magic: 0xdeadbeef);
            Assert.True(client.ServerClosed());
        }
        using (var client = RawNbdClient.Connect(nbd.Port))
        {
            client.Go(id.ToString());
            client.Send(new byte[] { 0x25, 0x60, 0x95, 0x13, 0, 0, 0, 0, 0, 0 });
            client.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            Assert.True(client.ServerClosed());
        }

        survivor.SendRequest(NbdProtocol.CmdFlush, 9, 0, 0);
        Assert.Equal((0u, 9ul), survivor.ReceiveSimpleReply());
        Assert.Contains(nbd.Log, line => line.Contains("bad request magic"));
        Assert.Contains(nbd.Log, line => line.Contains("inside a request header"));
    }

    [Fact]
    public async Task Replies_are_matched_by_cookie_when_requests_complete_out_of_order()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        var holdFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        nbd.Gateway.SetReadGate(id, offset => offset == 0 ? holdFirst.Task : Task.CompletedTask);
        using var client = RawNbdClient.Connect(nbd.Port);
        client.Go(id.ToString());

        client.SendRequest(NbdProtocol.CmdRead, 0x1111, 0, 4096);
        client.SendRequest(NbdProtocol.CmdRead, 0x2222, 4096, 4096);
        client.SendRequest(NbdProtocol.CmdFlush, 0x3333, 0, 0);

        // The first read is held by the gateway: the later ones are answered without waiting for it.
        var first = client.ReceiveSimpleReply();
        Assert.Equal((0u, 0x2222ul), first);
        client.Receive(4096);
        Assert.Equal((0u, 0x3333ul), client.ReceiveSimpleReply());
        holdFirst.SetResult();
        Assert.Equal((0u, 0x1111ul), client.ReceiveSimpleReply());
        client.Receive(4096);
    }

    [Fact]
    public async Task At_most_64_requests_are_in_flight_per_connection_and_all_are_answered()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int started = 0;
        nbd.Gateway.SetReadGate(id, _ =>
        {
            Interlocked.Increment(ref started);
            return release.Task;
        });
        using var client = RawNbdClient.Connect(nbd.Port);
        client.Go(id.ToString());

        for (ulong i = 0; i < 100; i++) client.SendRequest(NbdProtocol.CmdRead, i, i * 512, 512);
        await Eventually.Until(() => Volatile.Read(ref started) >= NbdConnection.MaxInFlight, PollTimeout, "64 reads to reach the gateway");
        Assert.Equal(NbdConnection.MaxInFlight, Volatile.Read(ref started));

        release.SetResult();
        var cookies = new HashSet<ulong>();
        for (int i = 0; i < 100; i++)
        {
            var (error, cookie) = client.ReceiveSimpleReply();
            Assert.Equal(0u, error);
            client.Receive(512);
            Assert.True(cookies.Add(cookie), $"cookie {cookie} answered twice");
        }
        Assert.Equal(100, cookies.Count);
        Assert.Equal(100, Volatile.Read(ref started));
    }

    [Fact]
    public async Task Structured_replies_carry_reads_errors_and_block_status()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);
        client.SendOption(NbdProtocol.OptStructuredReply, default);
        Assert.Equal(NbdProtocol.RepAck, client.ReceiveOptionReply().Type);
        var name = Encoding.ASCII.GetBytes(id.ToString());
        var query = "base:allocation"u8;
        var meta = new byte[4 + name.Length + 4 + 4 + query.Length];
        BinaryPrimitives.WriteUInt32BigEndian(meta, (uint)name.Length);
        name.CopyTo(meta, 4);
        BinaryPrimitives.WriteUInt32BigEndian(meta.AsSpan(4 + name.Length), 1);
        BinaryPrimitives.WriteUInt32BigEndian(meta.AsSpan(8 + name.Length), (uint)query.Length);
        query.CopyTo(meta.AsSpan(12 + name.Length));
        client.SendOption(NbdProtocol.OptSetMetaContext, meta);
        var context = client.ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepMetaContext, context.Type);
        uint contextId = BinaryPrimitives.ReadUInt32BigEndian(context.Data);
        Assert.Equal("base:allocation", Encoding.UTF8.GetString(context.Data.AsSpan(4)));
        Assert.Equal(NbdProtocol.RepAck, client.ReceiveOptionReply().Type);
        var (_, flags) = client.Go(id.ToString());
        Assert.NotEqual(0, flags & NbdProtocol.FlagSendDf);

        client.SendRequest(NbdProtocol.CmdWrite, 1, 4096, 4096, payload: Enumerable.Repeat((byte)9, 4096).ToArray());
        Assert.Equal((0u, 1ul), client.ReceiveSimpleReply());

        client.SendRequest(NbdProtocol.CmdRead, 2, 4096, 4096);
        var (flagsR, typeR, cookieR, payloadR) = ReceiveChunk(client);
        Assert.Equal((NbdProtocol.ReplyFlagDone, NbdProtocol.ReplyTypeOffsetData, 2ul), (flagsR, typeR, cookieR));
        Assert.Equal(4096ul, BinaryPrimitives.ReadUInt64BigEndian(payloadR));
        Assert.All(payloadR[8..], b => Assert.Equal(9, b));

        client.SendRequest(NbdProtocol.CmdRead, 3, 1024 * 1024, 512);
        var (flagsE, typeE, cookieE, payloadE) = ReceiveChunk(client);
        Assert.Equal((NbdProtocol.ReplyFlagDone, NbdProtocol.ReplyTypeError, 3ul), (flagsE, typeE, cookieE));
        Assert.Equal(NbdErrors.EINVAL, BinaryPrimitives.ReadUInt32BigEndian(payloadE));
        int messageLength = BinaryPrimitives.ReadUInt16BigEndian(payloadE.AsSpan(4));
        Assert.Equal("the range extends past the end of the export", Encoding.UTF8.GetString(payloadE, 6, messageLength));

        client.SendRequest(NbdProtocol.CmdBlockStatus, 4, 0, 16384);
        var (flagsB, typeB, cookieB, payloadB) = ReceiveChunk(client);
        Assert.Equal((NbdProtocol.ReplyFlagDone, NbdProtocol.ReplyTypeBlockStatus, 4ul), (flagsB, typeB, cookieB));
        Assert.Equal(contextId, BinaryPrimitives.ReadUInt32BigEndian(payloadB));
        var extents = Enumerable.Range(0, (payloadB.Length - 4) / 8)
            .Select(i => (BinaryPrimitives.ReadUInt32BigEndian(payloadB.AsSpan(4 + 8 * i)), BinaryPrimitives.ReadUInt32BigEndian(payloadB.AsSpan(8 + 8 * i))))
            .ToList();
        const uint hole = NbdProtocol.StateHole | NbdProtocol.StateZero;
        Assert.Equal([(4096u, hole), (4096u, 0u), (8192u, hole)], extents);

        client.SendRequest(NbdProtocol.CmdBlockStatus, 5, 0, 16384, flags: NbdProtocol.CmdFlagReqOne);
        var one = ReceiveChunk(client).Payload;
        Assert.Equal(12, one.Length);
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32BigEndian(one.AsSpan(4)));

        // An unaligned status length is a hint: answered in whole blocks (libnbd asks for INT32_MAX at a time).
        client.SendRequest(NbdProtocol.CmdBlockStatus, 6, 4096, 1000);
        var hint = ReceiveChunk(client);
        Assert.Equal(NbdProtocol.ReplyTypeBlockStatus, hint.Type);
        Assert.Equal(12, hint.Payload.Length);
        Assert.Equal((1024u, 0u), (BinaryPrimitives.ReadUInt32BigEndian(hint.Payload.AsSpan(4)), BinaryPrimitives.ReadUInt32BigEndian(hint.Payload.AsSpan(8))));

        client.SendRequest(NbdProtocol.CmdBlockStatus, 7, 1024 * 1024 - 512, 1024); // past the end
        var past = ReceiveChunk(client);
        Assert.Equal((NbdProtocol.ReplyTypeError, NbdErrors.EINVAL), (past.Type, BinaryPrimitives.ReadUInt32BigEndian(past.Payload)));
    }

    [Fact]
    public async Task Disposing_the_server_closes_open_connections_promptly()
    {
        var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var idle = RawNbdClient.Connect(nbd.Port);
        idle.Go(id.ToString());
        using var haggling = RawNbdClient.Connect(nbd.Port);
        await Eventually.Until(() => nbd.Server.ConnectionCount == 2, PollTimeout, "both connections to be accepted");

        // Idle connections are never dropped and the handshake timeout is 60 s: a dispose that ends well before that
        // closed the connections itself instead of waiting for its clients.
        await nbd.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(0, nbd.Server.ConnectionCount);
        Assert.True(idle.ServerClosed());
        Assert.True(haggling.ServerClosed());
    }

    [Fact]
    public async Task A_client_that_never_chooses_an_export_is_dropped_after_the_handshake_timeout()
    {
        await using var nbd = NbdTestServer.Start(handshakeTimeout: TimeSpan.FromMilliseconds(300));
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var slow = RawNbdClient.Connect(nbd.Port);
        using var prompt = RawNbdClient.Connect(nbd.Port);
        prompt.Go(id.ToString());

        Assert.True(slow.ServerClosed());
        Assert.Contains(nbd.Log, line => line.Contains("no export chosen"));
        // The timeout covers haggling only: a connection in transmission stays open however idle.
        prompt.SendRequest(NbdProtocol.CmdRead, 5, 0, 512);
        Assert.Equal((0u, 5ul), prompt.ReceiveSimpleReply());
    }

    [Fact]
    public async Task Export_name_enters_transmission_with_or_without_the_zero_padding()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        foreach (bool noZeroes in new[] { true, false })
        {
            using var client = RawNbdClient.Connect(nbd.Port, noZeroes);
            client.SendOption(NbdProtocol.OptExportName, Encoding.ASCII.GetBytes(id.ToString()));
            var reply = client.Receive(noZeroes ? 10 : 134);
            Assert.Equal(1024ul * 1024, BinaryPrimitives.ReadUInt64BigEndian(reply));
            Assert.NotEqual(0, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(8)) & NbdProtocol.FlagSendFlush);
            Assert.All(reply[10..], b => Assert.Equal(0, b));
            client.SendRequest(NbdProtocol.CmdRead, 1, 0, 512);
            Assert.Equal((0u, 1ul), client.ReceiveSimpleReply());
        }

        // OPT_EXPORT_NAME cannot be refused with a reply: an unknown export just ends the connection.
        using var unknown = RawNbdClient.Connect(nbd.Port);
        unknown.SendOption(NbdProtocol.OptExportName, Encoding.ASCII.GetBytes(Id160.Random().ToString()));
        Assert.True(unknown.ServerClosed());
    }

    [Fact]
    public async Task List_meta_context_offers_base_allocation_only()
    {
        await using var nbd = NbdTestServer.Start();
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        using var client = RawNbdClient.Connect(nbd.Port);
        client.SendOption(NbdProtocol.OptStructuredReply, default);
        Assert.Equal(NbdProtocol.RepAck, client.ReceiveOptionReply().Type);

        List<string> Query(params string[] queries)
        {
            var name = Encoding.ASCII.GetBytes(id.ToString());
            var data = new List<byte>();
            void U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); data.AddRange(b); }
            U32((uint)name.Length);
            data.AddRange(name);
            U32((uint)queries.Length);
            foreach (var q in queries) { U32((uint)q.Length); data.AddRange(Encoding.UTF8.GetBytes(q)); }
            client.SendOption(NbdProtocol.OptListMetaContext, data.ToArray());
            var found = new List<string>();
            while (true)
            {
                var (_, type, payload) = client.ReceiveOptionReply();
                if (type == NbdProtocol.RepAck) return found;
                Assert.Equal(NbdProtocol.RepMetaContext, type);
                found.Add(Encoding.UTF8.GetString(payload.AsSpan(4)));
            }
        }

        Assert.Equal(["base:allocation"], Query());
        Assert.Equal(["base:allocation"], Query("base:"));
        Assert.Equal(["base:allocation"], Query("base:allocation", "qemu:dirty-bitmap:x"));
        Assert.Empty(Query("qemu:allocation-depth"));
    }

    [Fact]
    public async Task Large_reads_in_flight_are_bounded_by_the_byte_budget()
    {
        const int size = 256 * 1024;
        const int fit = 4;
        await using var nbd = NbdTestServer.Start(inFlightBytes: fit * size);
        var id = nbd.Gateway.AddVolume(4 * 1024 * 1024);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int started = 0;
        nbd.Gateway.SetReadGate(id, _ =>
        {
            Interlocked.Increment(ref started);
            return release.Task;
        });
        using var client = RawNbdClient.Connect(nbd.Port);
        client.Go(id.ToString());
        const int max = size;

        for (ulong i = 0; i < (ulong)fit + 2; i++) client.SendRequest(NbdProtocol.CmdRead, i, (i % 2) * (ulong)max, max);
        await Eventually.Until(() => Volatile.Read(ref started) >= fit, PollTimeout, $"{fit} large reads to reach the gateway");
        Assert.Equal(fit, Volatile.Read(ref started)); // the rest wait for buffer budget, not for a slot

        release.SetResult();
        var data = new byte[max];
        for (int i = 0; i < fit + 2; i++)
        {
            Assert.Equal(0u, client.ReceiveSimpleReply().Error);
            client.ReceiveInto(data);
        }
        Assert.Equal(fit + 2, Volatile.Read(ref started));
    }

    private static (ushort Flags, ushort Type, ulong Cookie, byte[] Payload) ReceiveChunk(RawNbdClient client)
    {
        var h = client.Receive(20);
        Assert.Equal(NbdProtocol.StructuredReplyMagic, BinaryPrimitives.ReadUInt32BigEndian(h));
        return (BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(4)), BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(6)),
            BinaryPrimitives.ReadUInt64BigEndian(h.AsSpan(8)), client.Receive((int)BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(16))));
    }
}
