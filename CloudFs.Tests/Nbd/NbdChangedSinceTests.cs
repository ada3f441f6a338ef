// The meta context cloudfs:changed-since:<version> (SPEC.md): negotiated beside base:allocation, refused with a reason
// for a version that is unknown or compacted away, and BLOCK_STATUS replies with one chunk per context, flag 1 on the
// ranges written after the version. Over the raw protocol and with nbdinfo.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using CloudFs.BlockDevice;
using CloudFs.Host.Nbd;
using Xunit.Abstractions;

namespace CloudFs.Tests.Nbd;

public sealed class NbdChangedSinceTests(ITestOutputHelper output)
{
    private const int K = 1024;

    private static byte[] MetaData(string export, params string[] queries)
    {
        var data = new List<byte>();
        void U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); data.AddRange(b); }
        var name = Encoding.ASCII.GetBytes(export);
        U32((uint)name.Length);
        data.AddRange(name);
        U32((uint)queries.Length);
        foreach (var q in queries) { U32((uint)q.Length); data.AddRange(Encoding.UTF8.GetBytes(q)); }
        return data.ToArray();
    }

    private static RawNbdClient Structured(NbdTestServer nbd)
    {
        var client = RawNbdClient.Connect(nbd.Port);
        client.SendOption(NbdProtocol.OptStructuredReply, default);
        Assert.Equal(NbdProtocol.RepAck, client.ReceiveOptionReply().Type);
        return client;
    }

    /// <summary>The context replies up to the final ACK, or the error reply (type and message) that ended the option.</summary>
    private static (List<(uint Id, string Name)> Contexts, uint Final, string Message) Negotiate(RawNbdClient client, uint option, byte[] data)
    {
        client.SendOption(option, data);
        var contexts = new List<(uint, string)>();
        while (true)
        {
            var (_, type, payload) = client.ReceiveOptionReply();
            if (type != NbdProtocol.RepMetaContext) return (contexts, type, Encoding.UTF8.GetString(payload));
            contexts.Add((BinaryPrimitives.ReadUInt32BigEndian(payload), Encoding.UTF8.GetString(payload.AsSpan(4))));
        }
    }

    private static (ushort Flags, uint Context, List<(uint Length, uint Flags)> Extents) ReceiveStatusChunk(RawNbdClient client, ulong cookie)
    {
        var h = client.Receive(20);
        Assert.Equal(NbdProtocol.StructuredReplyMagic, BinaryPrimitives.ReadUInt32BigEndian(h));
        Assert.Equal(NbdProtocol.ReplyTypeBlockStatus, BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(6)));
        Assert.Equal(cookie, BinaryPrimitives.ReadUInt64BigEndian(h.AsSpan(8)));
        var payload = client.Receive((int)BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(16)));
        var extents = Enumerable.Range(0, (payload.Length - 4) / 8)
            .Select(i => (BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4 + 8 * i)), BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(8 + 8 * i))))
            .ToList();
        return (BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(4)), BinaryPrimitives.ReadUInt32BigEndian(payload), extents);
    }

    [Fact]
    public async Task Block_status_marks_the_ranges_written_after_the_version_beside_base_allocation()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(1024 * K);
        await nbd.Gateway.WriteAsync(id, 0, new byte[64 * K], fua: false);
        var v1 = nbd.Gateway.MarkVersion(id);
        await nbd.Gateway.WriteAsync(id, 128 * K, Enumerable.Repeat((byte)7, 8 * K).ToArray(), fua: false);
        await nbd.Gateway.WriteZeroesAsync(id, 512 * K, 4 * K, fua: false);

        using var client = Structured(nbd);
        var (contexts, final, _) = Negotiate(client, NbdProtocol.OptSetMetaContext, MetaData(id.ToString(), "base:allocation", $"cloudfs:changed-since:{v1}"));
        Assert.Equal(NbdProtocol.RepAck, final);
        Assert.Equal([(NbdProtocol.BaseAllocationContextId, "base:allocation"), (NbdProtocol.ChangedSinceContextId, $"cloudfs:changed-since:{v1}")], contexts);
        client.Go(id.ToString());

        client.SendRequest(NbdProtocol.CmdBlockStatus, 1, 0, 1024 * K);
        var allocation = ReceiveStatusChunk(client, 1);
        Assert.Equal(0, allocation.Flags); // not the last chunk
        Assert.Equal(NbdProtocol.BaseAllocationContextId, allocation.Context);
        var changed = ReceiveStatusChunk(client, 1);
        Assert.Equal(NbdProtocol.ReplyFlagDone, changed.Flags);
        Assert.Equal(NbdProtocol.ChangedSinceContextId, changed.Context);
        Assert.Equal([(128u * K, 0u), (8u * K, 1u), (376u * K, 0u), (4u * K, 1u), (508u * K, 0u)], changed.Extents);

        // Written after the context was negotiated: seen by the next query.
        client.SendRequest(NbdProtocol.CmdWrite, 2, 0, 4 * K, payload: new byte[4 * K]);
        Assert.Equal((0u, 2ul), client.ReceiveSimpleReply());
        client.SendRequest(NbdProtocol.CmdBlockStatus, 3, 0, 64 * K, flags: NbdProtocol.CmdFlagReqOne);
        ReceiveStatusChunk(client, 3);
        Assert.Equal([(4u * K, 1u)], ReceiveStatusChunk(client, 3).Extents);
    }

    [Fact]
    public async Task The_context_alone_answers_in_one_chunk()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(256 * K);
        var v1 = nbd.Gateway.MarkVersion(id);
        using var client = Structured(nbd);
        Assert.Equal(NbdProtocol.RepAck, Negotiate(client, NbdProtocol.OptSetMetaContext, MetaData(id.ToString(), $"cloudfs:changed-since:{v1}")).Final);
        client.Go(id.ToString());
        client.SendRequest(NbdProtocol.CmdBlockStatus, 1, 0, 256 * K);
        var only = ReceiveStatusChunk(client, 1);
        Assert.Equal(NbdProtocol.ReplyFlagDone, only.Flags);
        Assert.Equal(NbdProtocol.ChangedSinceContextId, only.Context);
        Assert.Equal([(256u * K, 0u)], only.Extents);
    }

    [Fact]
    public async Task Negotiation_refuses_an_unknown_a_compacted_and_a_malformed_version_with_a_reason()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(256 * K);
        var old = nbd.Gateway.MarkVersion(id);
        nbd.Gateway.CompactVersion(id, old);
        var unknown = Id160.Random();
        using var client = Structured(nbd);

        var refusedUnknown = Negotiate(client, NbdProtocol.OptSetMetaContext, MetaData(id.ToString(), "base:allocation", $"cloudfs:changed-since:{unknown}"));
        Assert.Empty(refusedUnknown.Contexts);
        Assert.Equal(NbdProtocol.RepErrInvalid, refusedUnknown.Final);
        Assert.Contains(unknown.ToString(), refusedUnknown.Message);

        var refusedOld = Negotiate(client, NbdProtocol.OptSetMetaContext, MetaData(id.ToString(), $"cloudfs:changed-since:{old}"));
        Assert.Equal(NbdProtocol.RepErrPolicy, refusedOld.Final);
        Assert.Contains($"version {old} is no longer available", refusedOld.Message);

        var malformed = Negotiate(client, NbdProtocol.OptListMetaContext, MetaData(id.ToString(), "cloudfs:changed-since:xyz"));
        Assert.Equal(NbdProtocol.RepErrInvalid, malformed.Final);
        Assert.Contains("'xyz' is not a version id", malformed.Message);

        // A refused SET selected nothing: BLOCK_STATUS is refused for want of a context.
        client.Go(id.ToString());
        client.SendRequest(NbdProtocol.CmdBlockStatus, 1, 0, 4096);
        var h = client.Receive(20);
        Assert.Equal(NbdProtocol.ReplyTypeError, BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(6)));
        client.Receive((int)BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(16)));
    }

    [Fact]
    public async Task List_meta_context_names_a_changed_since_context_it_was_asked_for()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(256 * K);
        var v = nbd.Gateway.MarkVersion(id);
        using var client = Structured(nbd);
        var listed = Negotiate(client, NbdProtocol.OptListMetaContext, MetaData(id.ToString(), $"cloudfs:changed-since:{v}"));
        Assert.Equal(NbdProtocol.RepAck, listed.Final);
        Assert.Equal([(0u, $"cloudfs:changed-since:{v}")], listed.Contexts);
    }

    [Fact]
    public async Task Nbdinfo_map_shows_the_changed_ranges()
    {
        await using var nbd = NbdTestServer.Start(output: output);
        var id = nbd.Gateway.AddVolume(NbdTestServer.DefaultSize);
        var v1 = nbd.Gateway.MarkVersion(id);
        (await ExternalTool.RunAsync("qemu-io", "-f", "raw", nbd.Uri(id), "-c", "write -P 0x5a 1M 64k", "-c", "write -z 4M 8k")).AssertSuccess();

        var map = (await ExternalTool.RunAsync("nbdinfo", $"--map=cloudfs:changed-since:{v1}", "--json", nbd.Uri(id))).AssertSuccess();
        using var json = JsonDocument.Parse(map.Stdout);
        var extents = json.RootElement.EnumerateArray()
            .Select(e => (Offset: e.GetProperty("offset").GetInt64(), Length: e.GetProperty("length").GetInt64(), Type: e.GetProperty("type").GetInt32()))
            .ToList();
        Assert.Equal([(1L << 20, 64L * K), (4L << 20, 8L * K)], extents.Where(e => e.Type == 1).Select(e => (e.Offset, e.Length)));
        Assert.Equal(NbdTestServer.DefaultSize, extents.Sum(e => e.Length));
    }
}
