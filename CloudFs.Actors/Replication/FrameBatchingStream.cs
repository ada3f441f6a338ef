// Beneath a feed's TLS stream: holds the TLS records SslStream writes for one frame (one record per 16 KiB) and hands
// them to the socket in one write when the frame is flushed, so a chunk of entries costs one send over TLS as it does
// on a plain feed. Reads pass straight through (SslStream reads whole records itself), so one reader and one writer
// may use it at once, as a feed does (entries one way, acknowledgements the other).
using System.Buffers;

namespace CloudFs.Actors.Replication;

internal sealed class FrameBatchingStream(Stream inner) : Stream
{
    // A frame's records beyond this go out before it is flushed (a 1 MiB entry's chunk is sent in pieces of this size).
    private const int MaxHeld = 256 << 10;
    private const int FirstBuffer = 64 << 10;

    // Writes and flushes, one at a time (SslStream writes for the writer, and may write from a read, e.g. a key update).
    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[]? _held;
    private int _count;

    /// <summary>Off during the TLS handshake (whose messages must go out as they are written), on after it.</summary>
    public bool Batching { get; set; }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!Batching || buffer.Length > MaxHeld)
            {
                if (_count > 0) await SendHeldAsync(cancellationToken).ConfigureAwait(false);
                await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
                return;
            }
            if (_count + buffer.Length > MaxHeld) await SendHeldAsync(cancellationToken).ConfigureAwait(false);
            Hold(buffer.Span);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Sends what the frame's records left here, in one write.</summary>
    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_count > 0) await SendHeldAsync(cancellationToken).ConfigureAwait(false);
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Hold(ReadOnlySpan<byte> bytes)
    {
        if (_held is null || _held.Length - _count < bytes.Length)
        {
            // Pooled, and given back after each send: an idle feed holds no buffer.
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(FirstBuffer, 2 * (_count + bytes.Length)));
            if (_held is not null)
            {
                _held.AsSpan(0, _count).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_held);
            }
            _held = bigger;
        }
        bytes.CopyTo(_held.AsSpan(_count));
        _count += bytes.Length;
    }

    private async Task SendHeldAsync(CancellationToken ct)
    {
        var held = _held!;
        await inner.WriteAsync(held.AsMemory(0, _count), ct).ConfigureAwait(false);
        // Returned only after a completed write: a cancelled one may still be reading it (its buffer is then dropped).
        _count = 0;
        _held = null;
        ArrayPool<byte>.Shared.Return(held);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
