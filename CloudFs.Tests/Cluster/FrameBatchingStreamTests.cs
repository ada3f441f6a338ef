// The stream under a feed's TLS: what is written for one frame reaches the socket in one write at the flush, in order,
// in bounded pieces when a frame is large; before batching is on (the handshake) every write goes out as it comes.
using CloudFs.Actors.Replication;

namespace CloudFs.Tests.Cluster;

public sealed class FrameBatchingStreamTests
{
    /// <summary>Records every write it is given, as one array each.</summary>
    private sealed class RecordingStream : MemoryStream
    {
        public List<byte[]> Writes { get; } = new();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes.Add(buffer.ToArray());
            return ValueTask.CompletedTask;
        }
    }

    private static byte[] Bytes(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task The_records_of_one_frame_go_out_in_one_write_when_it_is_flushed_and_none_before()
    {
        var socket = new RecordingStream();
        await using var stream = new FrameBatchingStream(socket) { Batching = true };
        var records = new[] { Bytes(16 * 1024 + 22, 1), Bytes(16 * 1024 + 22, 2), Bytes(900, 3) };
        foreach (var record in records) await stream.WriteAsync(record);
        Assert.Empty(socket.Writes);

        await stream.FlushAsync();
        var sent = Assert.Single(socket.Writes);
        Assert.Equal(records.SelectMany(r => r).ToArray(), sent);

        // A flush with nothing held writes nothing.
        await stream.FlushAsync();
        Assert.Single(socket.Writes);
    }

    [Fact]
    public async Task Writes_before_batching_is_on_go_out_as_they_come()
    {
        var socket = new RecordingStream();
        await using var stream = new FrameBatchingStream(socket);
        await stream.WriteAsync(Bytes(300, 1));
        await stream.WriteAsync(Bytes(40, 2));
        Assert.Equal(new[] { 300, 40 }, socket.Writes.Select(w => w.Length));
    }

    [Fact]
    public async Task A_frame_larger_than_what_is_held_goes_out_whole_and_in_order_in_bounded_pieces()
    {
        var socket = new RecordingStream();
        await using var stream = new FrameBatchingStream(socket) { Batching = true };
        var records = Enumerable.Range(0, 70).Select(i => Bytes(16 * 1024 + 22, i)).ToArray();   // a 1 MiB entry's chunk
        foreach (var record in records) await stream.WriteAsync(record);
        await stream.FlushAsync();

        Assert.Equal(records.SelectMany(r => r).ToArray(), socket.Writes.SelectMany(w => w).ToArray());
        Assert.All(socket.Writes, w => Assert.InRange(w.Length, 1, 256 << 10));
        Assert.InRange(socket.Writes.Count, 2, 8);
    }

    [Fact]
    public async Task Reads_pass_through_while_a_frame_is_held()
    {
        var socket = new RecordingStream();
        socket.Write(Bytes(64, 7));
        socket.Position = 0;
        await using var stream = new FrameBatchingStream(socket) { Batching = true };
        await stream.WriteAsync(Bytes(100, 1));
        var read = new byte[64];
        await stream.ReadExactlyAsync(read);
        Assert.Equal(Bytes(64, 7), read);
        Assert.Empty(socket.Writes);
    }
}
