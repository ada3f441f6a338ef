// The running totals of every scrub of one store, read by the node's /metrics at each scrape.
namespace CloudFs.BlockDevice;

/// <summary>Totals of every scrub this store ran since it opened (the node's /metrics reads them).</summary>
public sealed class ScrubStats
{
    private long _bytes, _bad, _passes, _running, _lastEnd;

    /// <summary>Live stored bytes verified.</summary>
    public long BytesVerified => Volatile.Read(ref _bytes);
    /// <summary>Stored blocks found bad (each time a scrub finds one).</summary>
    public long BadBlocks => Volatile.Read(ref _bad);
    /// <summary>Scrubs that ran to their end.</summary>
    public long Passes => Volatile.Read(ref _passes);
    /// <summary>Scrubs running now.</summary>
    public long Running => Volatile.Read(ref _running);
    /// <summary>When the last complete scrub ended (Unix seconds; 0 before the first).</summary>
    public long LastPassEndUnixSeconds => Volatile.Read(ref _lastEnd);

    internal void Verified(long bytes) => Interlocked.Add(ref _bytes, bytes);
    internal void Bad(long blocks) => Interlocked.Add(ref _bad, blocks);
    internal void Started() => Interlocked.Increment(ref _running);

    internal void Ended(bool complete)
    {
        Interlocked.Decrement(ref _running);
        if (!complete) return;
        Interlocked.Increment(ref _passes);
        Volatile.Write(ref _lastEnd, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }
}
