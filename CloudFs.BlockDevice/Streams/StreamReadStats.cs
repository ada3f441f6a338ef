// Where the entries that feeds and streams sent came from: the volume's in-memory copies of its last entries, or read
// back from the device (two direct reads and a verification each). A primary whose replicas keep up serves nearly all
// from memory; a count from the device that grows with the writes says a replica fell further behind than the copies
// reach. Read at each scrape.
namespace CloudFs.BlockDevice.Streams;

public sealed class StreamReadStats
{
    private long _fromMemory, _fromDevice;

    /// <summary>Entries copied out of the in-memory copies of recent entries.</summary>
    public long EntriesFromMemory => Volatile.Read(ref _fromMemory);
    /// <summary>Entries read back from the device.</summary>
    public long EntriesFromDevice => Volatile.Read(ref _fromDevice);

    internal void FromMemory() => Interlocked.Increment(ref _fromMemory);
    internal void FromDevice() => Interlocked.Increment(ref _fromDevice);
}
