// The node's NBD payload budget on its own: bytes up to the capacity (one request always, when nothing is held),
// waiters served in arrival order, a cancelled waiter leaves the line, and under contention nothing is lost or stuck.
using CloudFs.Host.Nbd;

namespace CloudFs.Tests.Nbd;

public sealed class NbdPayloadBudgetTests
{
    [Fact]
    public async Task Bytes_beyond_the_capacity_wait_in_arrival_order_and_a_cancelled_waiter_leaves_the_line()
    {
        var budget = new NbdPayloadBudget(100);
        Assert.True(budget.TryTake(60));
        Assert.True(budget.TryTake(40));
        Assert.False(budget.TryTake(1));

        using var cancelBig = new CancellationTokenSource();
        var big = budget.TakeAsync(90, cancelBig.Token);
        var small = budget.TakeAsync(10, CancellationToken.None);
        Assert.Equal(2, budget.Waiting);
        Assert.False(budget.TryTake(1)); // nobody overtakes the line

        budget.Return(40); // 60 held: the big one (90) does not fit, and the small one waits behind it
        Assert.False(big.IsCompleted || small.IsCompleted);
        await cancelBig.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => big);
        await small.WaitAsync(TimeSpan.FromSeconds(10)); // the line moved on
        Assert.Equal(70, budget.InUse);
        Assert.Equal(0, budget.Waiting);
    }

    [Fact]
    public void One_request_larger_than_the_capacity_proceeds_when_nothing_is_held()
    {
        var budget = new NbdPayloadBudget(100);
        Assert.True(budget.TryTake(500));
        Assert.False(budget.TryTake(1));
        budget.Return(500);
        Assert.True(budget.TryTake(1));
    }

    [Fact]
    public async Task Under_contention_the_capacity_holds_and_every_taker_is_served()
    {
        const long capacity = 1000;
        var budget = new NbdPayloadBudget(capacity);
        long held = 0, overdrawn = 0;
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            for (var i = 0; i < 3000; i++)
            {
                long bytes = random.Next(1, 400);
                if (!budget.TryTake(bytes)) await budget.TakeAsync(bytes, CancellationToken.None);
                var now = Interlocked.Add(ref held, bytes);
                if (now > capacity && now != bytes) Interlocked.Increment(ref overdrawn);
                if (random.Next(4) == 0) await Task.Yield();
                Interlocked.Add(ref held, -bytes);
                budget.Return(bytes);
            }
        })).ToArray();

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60)); // a lost wake-up would hang here
        Assert.Equal(0, Interlocked.Read(ref overdrawn));
        Assert.Equal(0, budget.InUse);
        Assert.Equal(0, budget.Waiting);
    }
}
