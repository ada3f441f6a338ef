// Reads of small pieces started ahead of their use, several at once, handed out in the order they were started, in
// bounded memory. The changes stream's small records each cost a round trip to the volume's primary on a node that
// does not hold the volume (one ask per read); overlapped, many of them cost about one.
using System.Buffers;

namespace CloudFs.Host.Http;

/// <param name="read">Fills the memory with the bytes at the offset.</param>
/// <param name="maxPieces">Reads in flight or done and not yet handed out, at most.</param>
internal sealed class ReadAhead(Func<long, Memory<byte>, ValueTask> read, int maxPieces) : IAsyncDisposable
{
    private readonly Queue<(long Offset, byte[] Buffer, int Length, Task Read)> _pending = new();

    public int Count => _pending.Count;
    public bool IsFull => _pending.Count >= maxPieces;

    /// <summary>Starts reading <paramref name="length"/> bytes at <paramref name="offset"/> (not when <see cref="IsFull"/>).</summary>
    public void Start(long offset, int length)
    {
        if (IsFull) throw new InvalidOperationException($"{maxPieces} reads are ahead already");
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        Task task;
        try { task = read(offset, buffer.AsMemory(0, length)).AsTask(); }
        catch (Exception e) { task = Task.FromException(e); }
        _pending.Enqueue((offset, buffer, length, task));
    }

    /// <summary>The oldest piece once read, given to <paramref name="use"/> (its bytes are valid until it completes);
    /// a failed read throws here.</summary>
    public async ValueTask NextAsync(Func<long, ReadOnlyMemory<byte>, ValueTask> use)
    {
        var (offset, buffer, length, task) = _pending.Dequeue();
        try
        {
            await task;
            await use(offset, buffer.AsMemory(0, length));
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>Waits for the reads still going (their buffers are theirs until then), then returns their buffers.</summary>
    public async ValueTask DisposeAsync()
    {
        while (_pending.TryDequeue(out var piece))
        {
            try { await piece.Read; }
            catch (Exception) { /* the stream already failed or was abandoned */ }
            ArrayPool<byte>.Shared.Return(piece.Buffer);
        }
    }
}
