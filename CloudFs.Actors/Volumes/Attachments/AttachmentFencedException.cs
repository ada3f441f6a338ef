// A write, zero-write or flush made under a read-write attachment whose lease the volume's writer no longer honours:
// another client took the volume over (after the lease lapsed, or `cloudfs detach --force`), or it was released. It
// changed nothing. NBD: EPERM, with the reason.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Attachments;

public sealed class AttachmentFencedException(string message) : CloudFsException(message);
