// Reply to any volume command that failed: the engine's error, carried so the gateway can rethrow the same kind.
using System.Runtime.ExceptionServices;
using CloudFs.Actors.Serialization;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

/// <param name="Local">The original exception when sender and receiver share a process; never serialized.</param>
public sealed record VolumeFailure(VolumeErrorKind Kind, Id160 VolumeId, long Offset, long Length, string Message, Exception? Local = null)
    : IVolumeProtocolMessage
{
    public static VolumeFailure From(Id160 volume, Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        return e switch
        {
            InvalidRangeException => new(VolumeErrorKind.InvalidRange, volume, 0, 0, e.Message, e),
            LogFullException => new(VolumeErrorKind.LogFull, volume, 0, 0, e.Message, e),
            DataCorruptionException d => new(VolumeErrorKind.DataCorruption, d.Volume, d.Offset, d.Length, e.Message, e),
            NotPrimaryException => new(VolumeErrorKind.NotPrimary, volume, 0, 0, e.Message, e),
            VolumeNotFoundException => new(VolumeErrorKind.VolumeNotFound, volume, 0, 0, e.Message, e),
            DeviceException => new(VolumeErrorKind.DeviceFailed, volume, 0, 0, e.Message, e),
            VolumeInTrashException => new(VolumeErrorKind.VolumeInTrash, volume, 0, 0, e.Message, e),
            UnknownVersionException u => new(VolumeErrorKind.UnknownVersion, u.Version, 0, 0, e.Message, e),
            AttachmentFencedException => new(VolumeErrorKind.AttachmentFenced, volume, 0, 0, e.Message, e),
            VersionCompactedException c => new(VolumeErrorKind.VersionCompacted, c.Version, 0, 0, e.Message, e),
            _ => new(VolumeErrorKind.Other, volume, 0, 0, e.Message, e),
        };
    }

    /// <summary>The engine exception this failure stands for (the original one in-process).</summary>
    public Exception ToException() => Local ?? Kind switch
    {
        VolumeErrorKind.InvalidRange => new InvalidRangeException(Message),
        VolumeErrorKind.LogFull => new LogFullException(Message),
        VolumeErrorKind.DataCorruption => new DataCorruptionException(VolumeId, Offset, Length, Message),
        VolumeErrorKind.NotPrimary => new NotPrimaryException(VolumeId),
        VolumeErrorKind.VolumeNotFound => new VolumeNotFoundException(VolumeId),
        VolumeErrorKind.DeviceFailed => new DeviceException(Message),
        VolumeErrorKind.VolumeInTrash => new VolumeInTrashException(VolumeId),
        VolumeErrorKind.UnknownVersion => new UnknownVersionException(VolumeId),
        VolumeErrorKind.VersionCompacted => new VersionCompactedException(VolumeId, Message),
        VolumeErrorKind.AttachmentFenced => new AttachmentFencedException(Message),
        _ => new CloudFsException(Message),
    };

    public void Throw() => ExceptionDispatchInfo.Throw(ToException());
}
