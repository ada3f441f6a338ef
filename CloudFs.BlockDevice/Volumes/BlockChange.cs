// What one chain entry changed of its volume, as a diff between versions needs it: a block range (Count 0: nothing,
// a metadata entry), or Unknown until its header has been read.
namespace CloudFs.BlockDevice.Volumes;

internal readonly record struct BlockChange(long First, long Count)
{
    public static readonly BlockChange Unknown = new(0, -1);
    public static readonly BlockChange None = new(0, 0);

    public bool IsKnown => Count >= 0;
}
