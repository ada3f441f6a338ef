// A full resync being received: the pieces admitted so far (their index and running totals), kept apart from the
// volume until the commit entry installs them whole; discarded when the transfer is abandoned or a restart finds no commit.
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Resync;

internal sealed class StagedResync(Id160 transfer, Id160 volume, long lsn)
{
    public Id160 Transfer { get; } = transfer;
    public Id160 Volume { get; } = volume;
    public long Lsn { get; } = lsn;
    /// <summary>Where the staged blocks live; changed under <see cref="Owner"/>'s IndexLock (compaction relocates it too).</summary>
    public ExtentIndex Index { get; } = new();
    /// <summary>Stands in for the volume while the staged copy is in no volume's hands (its IndexLock guards Index).</summary>
    public VolumeState Owner { get; } = new(volume, long.MaxValue & ~(long)(LogStore.BlockSize - 1), VolumeMode.Async, [], null, null, new ExtentIndex());
    public long Pieces;
    public long StoredBlocks;
    public long EndBlock;
    public Id160 Digest;
    public DateTime LastUse = DateTime.UtcNow;

    /// <summary>Counts a piece in, in log order (the same order on the live path and in replay).</summary>
    public void Count(long firstBlock, int blockCount, int stored, Id160 pieceDigest)
    {
        Pieces++;
        StoredBlocks += stored;
        EndBlock = Math.Max(EndBlock, firstBlock + blockCount);
        Digest = ResyncManifest.Chain(Digest, pieceDigest);
    }

    /// <summary>Null when the manifest's totals are exactly what was staged and every block lies inside the volume.</summary>
    public string? Check(ResyncManifest m)
    {
        if (m.Pieces != Pieces || m.StoredBlocks != StoredBlocks)
            return $"the resync of volume {Volume} ends after {Pieces} pieces ({StoredBlocks} blocks) but its commit names {m.Pieces} ({m.StoredBlocks}): pieces are missing";
        if (m.PiecesDigest != Digest) return $"the resync of volume {Volume}: the pieces do not match the commit's digest";
        if (EndBlock * LogStore.BlockSize > m.SizeBytes) return $"the resync of volume {Volume} holds blocks beyond its size {m.SizeBytes}";
        return null;
    }
}
