// The engine's error vocabulary: each maps to one NBD error and one HTTP status in the front ends.
namespace CloudFs.BlockDevice;

/// <summary>Base of every error the engine reports on purpose; the message is one clear sentence.</summary>
public class CloudFsException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>No such volume on this node (NBD: ENOENT on open, HTTP 404).</summary>
public sealed class VolumeNotFoundException(Id160 volume)
    : CloudFsException($"volume {volume} is not held by this node")
{ public Id160 Volume { get; } = volume; }

/// <summary>No such version in the volume's history (HTTP 404).</summary>
public sealed class UnknownVersionException(Id160 version)
    : CloudFsException($"version {version} is not known to this node")
{ public Id160 Version { get; } = version; }

/// <summary>The version exists but the entries after it were reclaimed by compaction (HTTP 410).</summary>
public sealed class VersionCompactedException : CloudFsException
{
    public VersionCompactedException(Id160 version, long oldestStreamableLsn)
        : base($"the history after version {version} was compacted away; the oldest streamable lsn is {oldestStreamableLsn}") => Version = version;

    /// <summary>A version asked for by id (diff, branch, a changed-since context): the message names it and
    /// <paramref name="oldestAvailable"/>, the oldest version of its volume whose history is still held.</summary>
    public VersionCompactedException(Id160 version, Id160 oldestAvailable)
        : base($"version {version}{GoneMarker}; the oldest version still available is {oldestAvailable}")
    {
        Version = version;
        OldestAvailable = oldestAvailable;
    }

    /// <summary>The same refusal carried from another node: its message as the node holding the volume wrote it.</summary>
    public VersionCompactedException(Id160 version, string message) : base(message) => Version = version;

    /// <summary>What every refusal of a version asked for by id says after its id: front ends that only see the
    /// message (a management answer) recognise it by this (HTTP 410 Gone).</summary>
    public const string GoneMarker = " is no longer available: the history after it was compacted away";

    public Id160 Version { get; }
    /// <summary>The oldest version still available, when the message names one.</summary>
    public Id160? OldestAvailable { get; }
}

/// <summary>The volume is in the trash: nothing is written to it until it is restored (NBD: EPERM, HTTP 409).</summary>
public sealed class VolumeInTrashException(Id160 volume)
    : CloudFsException($"volume {volume} is in the trash; `cloudfs trash restore {volume}` brings it back")
{ public Id160 Volume { get; } = volume; }

/// <summary>Misaligned or out-of-range request (NBD: EINVAL, HTTP 416/400).</summary>
public sealed class InvalidRangeException(string message) : CloudFsException(message);

/// <summary>The log has no free segment left (NBD: ENOSPC, HTTP 507).</summary>
public sealed class LogFullException(string message) : CloudFsException(message);

/// <summary>A stored block failed its checksum: the range cannot be returned (NBD: EIO, HTTP 500).</summary>
public sealed class DataCorruptionException(Id160 volume, long offset, long length, string detail)
    : CloudFsException($"volume {volume}: stored data at bytes {offset}..{offset + length - 1} failed its checksum ({detail})")
{
    public Id160 Volume { get; } = volume;
    public long Offset { get; } = offset;
    public long Length { get; } = length;
    /// <summary>What failed, where in the log (the damage map keeps it as the range's reason).</summary>
    public string Detail { get; } = detail;
}

/// <summary>This node cannot extend the volume's chain: it does not hold the secret (NBD: EPERM, HTTP 403/redirect).</summary>
public sealed class NotPrimaryException(Id160 volume)
    : CloudFsException($"this node is not the primary of volume {volume} (it does not hold the volume's secret)")
{ public Id160 Volume { get; } = volume; }

/// <summary>An entry of a stream (or of the log) broke a rule: checksum, chain, lsn, bounds (HTTP 400/409).</summary>
public sealed class EntryRejectedException(string reason, long entryIndex, bool isFork = false)
    : CloudFsException(reason)
{
    public long EntryIndex { get; } = entryIndex;
    public bool IsFork { get; } = isFork;
}

/// <summary>
/// The device cannot be opened the way it was asked (held by another process, wrong host id, too small), or one of
/// its reads, writes or flushes failed (NBD: EIO, HTTP 503). <see cref="Errno"/> is what the kernel returned, 0 when
/// the failure is not an errno.
/// </summary>
public sealed class DeviceException(string message, Exception? inner = null, int errno = 0) : CloudFsException(message, inner)
{
    public int Errno { get; } = errno;
}

/// <summary>A full resync cannot go on: a piece is forged or missing, the transfer is unknown, or the replica is ahead (HTTP 409).</summary>
public sealed class ResyncRefusedException(string message) : CloudFsException(message);

/// <summary>
/// The volume's chain is claimed on this host by its writer (the primary's volume actor): only the claim's holder changes
/// it; a stream, feed, resync or split that would is refused before changing anything (HTTP 409).
/// </summary>
public sealed class ChainClaimedException(Id160 volume, string message) : CloudFsException(message)
{ public Id160 Volume { get; } = volume; }
