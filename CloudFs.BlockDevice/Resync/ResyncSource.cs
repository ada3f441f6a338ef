// A full resync being sent: a frozen snapshot of the volume's index at one lsn (compaction relocates it like any
// index, so its blocks stay readable), where the next piece starts, and the totals the commit will carry.
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Resync;

internal sealed class ResyncSource(Id160 transfer, VolumeState volume, long lsn, Id160 version, ExtentIndex snapshot, ResyncManifest head)
{
    public Id160 Transfer { get; } = transfer;
    public VolumeState Volume { get; } = volume;
    public long Lsn { get; } = lsn;
    public Id160 Version { get; } = version;
    public ExtentIndex Snapshot { get; } = snapshot;
    /// <summary>Metadata and chain position at <see cref="Lsn"/>; the totals are filled in when the last piece is read.</summary>
    public ResyncManifest Head { get; } = head;
    public object Gate { get; } = new();
    public long NextBlock;
    public long Pieces;
    public long StoredBlocks;
    public Id160 Digest;
    public bool Complete;
    /// <summary>The last answer, sent again when the same piece is asked for twice (its reply was lost).</summary>
    public long LastFrom = -1;
    public ResyncChunk? LastChunk;
    public DateTime LastUse = DateTime.UtcNow;
}
