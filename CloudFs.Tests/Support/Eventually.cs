// The one polling helper of the tests: waits on a condition (or a value) with a timeout, never a fixed sleep.
namespace CloudFs.Tests.Support;

/// <summary>Polls a condition until it holds or the timeout passes (no fixed sleeps in tests).</summary>
public static class Eventually
{
    public static async Task Until(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not reached within {timeout.TotalSeconds:0} s: {what}");
            await Task.Delay(50);
        }
    }

    public static async Task<T> Value<T>(Func<Task<T?>> probe, TimeSpan timeout, string what) where T : class
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await probe() is { } value) return value;
            }
            catch (Exception e) { last = e; }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not reached within {timeout.TotalSeconds:0} s: {what}" + (last is null ? "" : $" (last error: {last.Message})"));
            await Task.Delay(100);
        }
    }
}
