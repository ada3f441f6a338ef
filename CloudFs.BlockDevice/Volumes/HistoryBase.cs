// A volume's history base (cloudfs.retention.time and protected versions): its oldest available version.
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice.Volumes;

/// <summary>A volume's oldest available version: its lsn, its id, its index then, frozen (null for lsn 0: the whole
/// history; the version is then the volume's id, its first), and its size then (0 for lsn 0: the creation entry sets
/// it; <see cref="UnknownSize"/> when a checkpoint written before sizes were kept gave none). Checkpointed (the history
/// section), so a restart keeps what retention and protection keep.</summary>
internal sealed record HistoryBase(long Lsn, Id160 Version, ExtentIndex? Index, long SizeBytes)
{
    /// <summary>The size of a base read from an older checkpoint: derived from the entries after it when first asked.</summary>
    public const long UnknownSize = -1;
}
