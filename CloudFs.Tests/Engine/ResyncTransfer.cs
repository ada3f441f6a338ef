// A whole full-resync transfer between two stores in a test: every piece read from the sender, then applied.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Resync;

namespace CloudFs.Tests.Engine;

internal static class ResyncTransfer
{
    /// <summary>Bytes a test asks for per piece.</summary>
    public const int Piece = 256 << 10;

    /// <summary>Reads every piece of a new transfer of <paramref name="v"/> from <paramref name="src"/> (entries sized for
    /// its own segments: the receivers' are as small); <paramref name="between"/> runs before each later piece, told how
    /// many were read.</summary>
    public static async Task<List<ResyncChunk>> ReadAsync(LogStore src, Id160 v, Func<int, Task>? between = null)
    {
        var chunks = new List<ResyncChunk>();
        var c = await src.Resync.ReadAsync(v, Id160.Zero, 0, Piece, src.MaxBlocksPerEntry);
        chunks.Add(c);
        while (!c.Complete)
        {
            if (between is not null) await between(chunks.Count);
            c = await src.Resync.ReadAsync(v, c.Transfer, c.NextBlock, Piece, src.MaxBlocksPerEntry);
            chunks.Add(c);
        }
        return chunks;
    }

    /// <summary>Applies <paramref name="chunks"/> in order on <paramref name="dst"/>; the last piece's progress.</summary>
    public static async Task<ResyncProgress> ApplyAsync(LogStore dst, IEnumerable<ResyncChunk> chunks)
    {
        ResyncProgress last = null!;
        foreach (var c in chunks) last = await dst.Resync.ApplyAsync(c.Data);
        return last;
    }
}
