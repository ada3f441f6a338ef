// The kinds of engine error a volume reply can carry; each maps to one engine exception (and one NBD errno).
namespace CloudFs.Actors.Volumes;

public enum VolumeErrorKind : byte
{
    Other = 0,
    InvalidRange = 1,
    LogFull = 2,
    DataCorruption = 3,
    NotPrimary = 4,
    VolumeNotFound = 5,
    /// <summary>The log device of the volume's host failed a write or flush (DeviceException; NBD EIO).</summary>
    DeviceFailed = 6,
    /// <summary>The volume is in the trash (VolumeInTrashException; NBD EPERM).</summary>
    VolumeInTrash = 7,
    /// <summary>A version asked for is not in the volume's history here (UnknownVersionException; the failure's
    /// volume id is the version).</summary>
    UnknownVersion = 8,
    /// <summary>A version asked for is past what compaction kept (VersionCompactedException; the failure's volume id
    /// is the version).</summary>
    VersionCompacted = 9,
    /// <summary>A write made under a read-write attachment whose lease was superseded (AttachmentFencedException;
    /// NBD EPERM).</summary>
    AttachmentFenced = 10,
}
