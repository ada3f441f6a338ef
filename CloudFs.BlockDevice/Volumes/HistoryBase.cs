// A volume's history base (cloudfs.retention.time and protected versions): its oldest available version.
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice.Volumes;

/// <summary>A volume's oldest available version: its lsn, its id, and its index then, frozen (null for lsn 0: the
/// whole history; the version is then the volume's id, its first). Checkpointed (the history section), so a restart
/// keeps what retention and protection keep.</summary>
internal sealed record HistoryBase(long Lsn, Id160 Version, ExtentIndex? Index);
