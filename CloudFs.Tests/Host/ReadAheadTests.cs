// ReadAhead (the changes stream's small records read several at once): pieces are handed out in the order they were
// started however their reads complete, a failed read fails at its turn, and disposing waits for reads still going.
using CloudFs.Host.Http;

namespace CloudFs.Tests.Host;

public sealed class ReadAheadTests
{
    [Fact]
    public async Task Pieces_come_out_in_the_order_they_were_started_whichever_read_completes_first()
    {
        var reads = new Dictionary<long, TaskCompletionSource>();
        var ahead = new ReadAhead(async (offset, into) =>
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (reads) reads[offset] = done;
            await done.Task;
            into.Span.Fill((byte)(offset / 512));
        }, maxPieces: 3);
        await using (ahead)
        {
            foreach (var offset in new long[] { 512, 1024, 1536 }) ahead.Start(offset, 512);
            Assert.True(ahead.IsFull);
            Assert.Throws<InvalidOperationException>(() => ahead.Start(2048, 512));
            // The last and the middle read finish first.
            lock (reads) { reads[1536].SetResult(); reads[1024].SetResult(); }
            var seen = new List<(long, byte)>();
            ValueTask Use(long offset, ReadOnlyMemory<byte> data)
            {
                seen.Add((offset, data.Span[0]));
                return ValueTask.CompletedTask;
            }
            var first = ahead.NextAsync(Use).AsTask();
            Assert.False(first.IsCompleted);
            lock (reads) reads[512].SetResult();
            await first;
            await ahead.NextAsync(Use);
            await ahead.NextAsync(Use);
            Assert.Equal([(512L, (byte)1), (1024L, (byte)2), (1536L, (byte)3)], seen);
            Assert.Equal(0, ahead.Count);
        }
    }

    [Fact]
    public async Task A_failed_read_fails_at_its_turn_and_dispose_waits_for_the_reads_still_going()
    {
        var slow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = false;
        var ahead = new ReadAhead(async (offset, _) =>
        {
            if (offset == 0) throw new IOException("the read failed");
            await slow.Task;
            finished = true;
        }, maxPieces: 4);
        ahead.Start(0, 512);
        ahead.Start(512, 512);
        await Assert.ThrowsAsync<IOException>(() => ahead.NextAsync((_, _) => ValueTask.CompletedTask).AsTask());
        var disposed = ahead.DisposeAsync().AsTask();
        Assert.False(disposed.IsCompleted);
        slow.SetResult();
        await disposed;
        Assert.True(finished);
    }
}
