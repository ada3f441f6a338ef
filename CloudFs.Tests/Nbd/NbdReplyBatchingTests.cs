// Replies that become known together leave together: one flush, one send, and under TLS one record per batch of
// completions, not one per reply (each record costs both ends a seal or an open and the client a read).
using CloudFs.Actors.Security;
using CloudFs.Host.Nbd;
using CloudFs.Tests.Security;
using CloudFs.Tests.Support;

namespace CloudFs.Tests.Nbd;

public sealed class NbdReplyBatchingTests : IDisposable
{
    private readonly TestAuthority _ca = new();
    private readonly ClusterTls _node;
    private readonly ClusterTls _admin;

    public NbdReplyBatchingTests()
    {
        _node = _ca.LoadNode("node", null, "127.0.0.1");
        _admin = ClusterTls.Load(_ca.Operator("admin"));
    }

    public void Dispose()
    {
        _admin.Dispose();
        _node.Dispose();
        _ca.Dispose();
    }

    [Fact]
    public async Task Requests_completed_one_after_another_are_answered_in_a_few_TLS_records_not_one_each()
    {
        await using var nbd = NbdTestServer.Start(tls: _node);
        var id = nbd.Gateway.AddVolume(1024 * 1024);
        // Every read waits at its own gate; the test opens them one after another on one pool thread, each read's
        // completion running inline, as the log completes the requests of a group commit.
        var gates = new System.Collections.Concurrent.ConcurrentQueue<TaskCompletionSource>();
        nbd.Gateway.SetReadGate(id, _ =>
        {
            var gate = new TaskCompletionSource();
            gates.Enqueue(gate);
            return gate.Task;
        });
        using var client = RawNbdClient.Connect(nbd.Port);
        client.StartTls(_admin, _admin);
        client.Go(id.ToString());

        const int count = 32;
        const int length = 512; // all 32 replies fit two records of 16 KiB
        for (int i = 0; i < count; i++) client.SendRequest(NbdProtocol.CmdRead, (ulong)i, (ulong)(i * length), length);
        await Eventually.Until(() => gates.Count == count, TimeSpan.FromSeconds(10), "all reads at their gates");
        long before = client.TlsRecordsReceived;
        await Task.Run(() =>
        {
            foreach (var gate in gates) gate.SetResult();
        });

        var answered = new HashSet<ulong>();
        for (int i = 0; i < count; i++)
        {
            var (error, cookie) = client.ReceiveSimpleReply();
            Assert.Equal(0u, error);
            Assert.True(answered.Add(cookie), $"cookie {cookie} answered twice");
            client.Receive(length);
        }
        long records = client.TlsRecordsReceived - before;
        Assert.True(records <= count / 4, $"{count} replies completed together came in {records} TLS records");
    }
}
