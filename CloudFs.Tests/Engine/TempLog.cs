// A log file in a private temp directory for one test, with small segments; deleted with the directory afterwards.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

internal sealed class TempLog : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("cloudfs-engine-").FullName;
    public string Path => System.IO.Path.Combine(Dir, "log");
    public List<string> Messages { get; } = new();

    public LogStoreOptions Options(long size = 16 << 20, int segment = 256 << 10, Id160? host = null) => new()
    {
        Path = Path,
        CreateSize = size,
        SegmentSize = segment,
        HostId = host,
        CheckpointBytes = long.MaxValue,
        CheckpointInterval = TimeSpan.FromHours(1),
        Log = m => { lock (Messages) Messages.Add(m); },
    };

    public LogStore Open(long size = 16 << 20, int segment = 256 << 10, Id160? host = null) => LogStore.Open(Options(size, segment, host));

    /// <summary>Overwrites bytes of the device file (the store must be closed).</summary>
    public void Poke(long offset, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(Path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        fs.Write(bytes);
        fs.Flush(true);
    }

    public byte[] Peek(long offset, int length)
    {
        using var fs = new FileStream(Path, FileMode.Open, FileAccess.Read);
        fs.Position = offset;
        var b = new byte[length];
        fs.ReadExactly(b);
        return b;
    }

    public void FlipBit(long offset, int bit = 0)
    {
        var b = Peek(offset, 1);
        b[0] ^= (byte)(1 << bit);
        Poke(offset, b);
    }

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
