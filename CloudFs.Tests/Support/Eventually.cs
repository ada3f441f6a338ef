// The one polling helper of the tests: waits on a condition (or a value) with a timeout, never a fixed sleep.
namespace CloudFs.Tests.Support;

/// <summary>
/// Polls a condition until it holds or the timeout passes (no fixed sleeps in tests). The first wait is 1 ms and each
/// next one twice as long, up to 10 ms for a check of memory (<see cref="Func{Boolean}"/>) and up to 100 ms for a
/// question to a node, a process or a store (<see cref="Func{T}"/> of a task, asked after its previous answer): a quick
/// change is seen at once, a slow one is not asked about in a busy loop. What is awaited is a string or,
/// when saying it costs something (the last answer, the nodes' output), a function called only on a timeout.
/// A timeout is a <see cref="TimeoutException"/> naming what was not reached.
/// </summary>
public static class Eventually
{
    private static readonly TimeSpan FirstInterval = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan MemoryInterval = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan QuestionInterval = TimeSpan.FromMilliseconds(100);

    public static Task Until(Func<bool> condition, TimeSpan timeout, string what) =>
        Until(condition, timeout, () => what);

    public static Task Until(Func<bool> condition, TimeSpan timeout, Func<string> what) =>
        Poll(() => Task.FromResult(condition()), MemoryInterval, timeout, what);

    public static Task Until(Func<Task<bool>> condition, TimeSpan timeout, string what) =>
        Until(condition, timeout, () => what);

    public static Task Until(Func<Task<bool>> condition, TimeSpan timeout, Func<string> what) =>
        Poll(condition, QuestionInterval, timeout, what);

    /// <summary>The first non-null answer of <paramref name="probe"/>; an exception it throws counts as no answer yet
    /// (a node that is starting or down answers with an error) and is named if the timeout passes.</summary>
    public static Task<T> Value<T>(Func<Task<T?>> probe, TimeSpan timeout, string what) where T : class =>
        Value(probe, timeout, () => what);

    public static async Task<T> Value<T>(Func<Task<T?>> probe, TimeSpan timeout, Func<string> what) where T : class
    {
        T? value = null;
        Exception? last = null;
        await Poll(async () =>
        {
            try { value = await probe(); }
            catch (Exception e) { last = e; }
            return value is not null;
        }, QuestionInterval, timeout, () => what() + (last is null ? "" : $" (last error: {last.Message})"));
        return value!;
    }

    private static async Task Poll(Func<Task<bool>> condition, TimeSpan longest, TimeSpan timeout, Func<string> what)
    {
        var deadline = DateTime.UtcNow + timeout;
        var interval = FirstInterval;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not reached within {timeout.TotalSeconds:0.#} s: {what()}");
            await Task.Delay(interval);
            interval = TimeSpan.FromTicks(Math.Min(interval.Ticks * 2, longest.Ticks));
        }
    }
}
