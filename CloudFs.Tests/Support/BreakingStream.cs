// A stream source that fails like a dropped connection: it delivers its bytes, then every read throws an IOException.
namespace CloudFs.Tests.Support;

internal sealed class BreakingStream(byte[] bytes) : MemoryStream(bytes)
{
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
        Position < Length ? base.ReadAsync(buffer, ct) : ValueTask.FromException<int>(new IOException("connection reset by peer"));
}
