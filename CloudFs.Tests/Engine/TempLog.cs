// A log file in a private temp directory for one test, with small segments; deleted with the directory afterwards.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Device;

namespace CloudFs.Tests.Engine;

internal sealed class TempLog : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("cloudfs-engine-").FullName;
    public string Path => System.IO.Path.Combine(Dir, "log");
    public List<string> Messages { get; } = new();
    /// <summary>What the engine reported as errors (LogStoreOptions.LogError: the node logs these at ERROR).</summary>
    public List<string> Errors { get; } = new();

    public LogStoreOptions Options(long size = 16 << 20, int segment = 256 << 10, Id160? host = null) => new()
    {
        Path = Path,
        CreateSize = size,
        SegmentSize = segment,
        HostId = host,
        CheckpointBytes = long.MaxValue,
        CheckpointInterval = TimeSpan.FromHours(1),
        Log = m => { lock (Messages) Messages.Add(m); },
        LogError = m => { lock (Errors) Errors.Add(m); },
    };

    public LogStore Open(long size = 16 << 20, int segment = 256 << 10, Id160? host = null) => OpenRetrying(Options(size, segment, host));

    /// <summary>Opens the store over a <see cref="FaultyDevice"/> around the real file: the test injects faults or holds I/O through it.</summary>
    public LogStore OpenFaulty(out FaultyDevice device, long size = 16 << 20, int segment = 256 << 10) =>
        OpenFaulty(Options(size, segment), out device);

    public static LogStore OpenFaulty(LogStoreOptions options, out FaultyDevice device)
    {
        FaultyDevice? faulty = null;
        var store = OpenRetrying(options with { WrapDevice = d => faulty = new FaultyDevice(d) });
        device = faulty!;
        return store;
    }

    /// <summary>
    /// Opens a store that was just closed. A child process another test class is starting (between fork and exec)
    /// can hold a copy of the closed descriptor, and so its lock, for a moment: retry that refusal until a deadline.
    /// </summary>
    public static LogStore OpenRetrying(LogStoreOptions options)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try { return LogStore.Open(options); }
            catch (DeviceException e) when (e.Message.Contains("held") && DateTime.UtcNow < deadline) { Thread.Sleep(20); }
        }
    }

    public byte[] ReadAll()
    {
        using var fs = OpenFile(FileAccess.Read);
        var b = new byte[fs.Length];
        fs.ReadExactly(b);
        return b;
    }

    /// <summary>
    /// Opens the closed device file. A child process another test is starting (fork before exec) can hold a copy of
    /// the store's locked descriptor for a moment: retry until a deadline instead of failing on that race.
    /// </summary>
    private FileStream OpenFile(FileAccess access)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try { return new FileStream(Path, FileMode.Open, access); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(20); }
        }
    }

    /// <summary>Overwrites bytes of the device file (the store must be closed).</summary>
    public void Poke(long offset, ReadOnlySpan<byte> bytes)
    {
        using var fs = OpenFile(FileAccess.ReadWrite);
        fs.Position = offset;
        fs.Write(bytes);
        fs.Flush(true);
    }

    public byte[] Peek(long offset, int length)
    {
        using var fs = OpenFile(FileAccess.Read);
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
