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

    /// <summary>The chain's state at the base (what a full resync as of the base sends); null for lsn 0, and for a base
    /// from a checkpoint written before it was kept (a full resync then goes as of the head).</summary>
    public BaseChainState? Chain { get; init; }

    /// <summary>A base a full resync installed stays where it is until the volume's head reaches this lsn (the sender's
    /// head when the transfer began; 0: no such hold): the protect entries in force there come after the base, and
    /// until they have applied nothing here knows the versions they keep.</summary>
    public long HeldUntilLsn { get; init; }
}
