// Node-to-node control messages of the cluster (Hyperion adapter): what the placement singleton and the other hosts
// ask a host's agent (/user/cloudfs-host). Ids travel as 40-hex strings, keys and shares as byte arrays.
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

/// <summary>Answered with <see cref="HostDescription"/>.</summary>
public sealed record DescribeHost : IControlMessage
{
    public static readonly DescribeHost Instance = new();
}

/// <summary>A host: its id, member address, whether its log has room, and why its log device failed (null while it
/// works; a failed host is primary of nothing and takes no volume). The key shares are sealed to is not here: only an
/// identity proof (CloudFs.Actors.Identity) says it.</summary>
public sealed record HostDescription(string HostId, string Address, long FreeBytes, string? DeviceFailure = null) : IControlMessage;

/// <summary>Answered with <see cref="VolumeReports"/>: the volumes of this host's log (and its followers) that changed
/// after stamp <paramref name="Since"/> of this host's answer of epoch <paramref name="Epoch"/>, and those it dropped;
/// every volume instead (a full report) when Since is 0 or the epoch is not the host agent's (placement moved, it never
/// asked this host, or the host's agent restarted).</summary>
public sealed record ReportVolumes(long Since = 0, long Epoch = 0) : IControlMessage
{
    /// <summary>Every volume, whatever changed.</summary>
    public static readonly ReportVolumes Full = new();
}

/// <summary>One volume as one host's log holds it; <paramref name="DamagedBytes"/>: how much of it this host cannot serve;
/// <paramref name="Name"/>: given at creation (null for none); <paramref name="TrashedAtUnixMs"/>: when it went to the trash (0: not in it);
/// <paramref name="Protected"/>: the versions `cloudfs protect` keeps (null for none).</summary>
public sealed record VolumeReport(
    string Id, long Size, VolumeMode Mode, string[] Replicas, long Lsn, string Version, bool Writable,
    long ViewNumber, string? BranchedFrom, long DamagedBytes = 0, string? Name = null, long TrashedAtUnixMs = 0,
    string[]? Protected = null) : IControlMessage;

/// <summary>The volumes of a host's log, and where each of its followers stands (<paramref name="Syncs"/>: also for a
/// volume it does not hold yet, a new replica being resynced). <paramref name="Full"/>: every volume and follower (those
/// not in it are not on the host); otherwise only what changed after the stamp asked for, <paramref name="Removed"/> the
/// volumes dropped since (purged) and <paramref name="RemovedSyncs"/> the followers stopped since. Ask from
/// <paramref name="Stamp"/> of <paramref name="Epoch"/> next time.</summary>
public sealed record VolumeReports(string HostId, VolumeReport[] Volumes, ReplicaSync[]? Syncs = null, bool Full = true,
    string[]? Removed = null, string[]? RemovedSyncs = null, long Epoch = 0, long Stamp = 0) : IControlMessage;

/// <summary>Phase one of creation: can this host take a new volume of this size? Answered with <see cref="Vote"/>.</summary>
public sealed record PrepareVolume(long SizeBytes) : IControlMessage;
public sealed record Vote(bool Yes, string? Reason) : IControlMessage;

/// <summary>Phase two on the chosen primary: create the volume here; answered with the new volume's <see cref="VolumeReport"/>.</summary>
public sealed record CreateLocalVolume(long SizeBytes, VolumeMode Mode, string[] Replicas, string? Name = null) : IControlMessage;

/// <summary>Drop this host's copy of a volume in the trash (placement's purge, or the trash's expiry on this host);
/// answered with <see cref="VolumePurged"/> (Held false: this host did not hold it) or a <see cref="ControlFailed"/>.</summary>
public sealed record PurgeLocalVolume(string Volume) : IControlMessage;
public sealed record VolumePurged(string Volume, string HostId, bool Held) : IControlMessage;

/// <summary>Follow the volume's primary (start, or keep, this host's follower); answered with <see cref="Following"/>.</summary>
public sealed record FollowVolume(string Volume) : IControlMessage;
public sealed record Following(string Volume) : IControlMessage;

/// <summary>Answered with <see cref="VolumeHeld"/> once this host's log holds the volume (or with a failure after the timeout).</summary>
public sealed record AwaitVolume(string Volume, long TimeoutMs) : IControlMessage;
public sealed record VolumeHeld(VolumeReport Volume) : IControlMessage;

/// <summary>Failover, step one: stop following the volume (this host acknowledges nothing more from the old primary);
/// answered with <see cref="Fenced"/> and what this host holds.</summary>
public sealed record FenceVolume(string Volume) : IControlMessage;
public sealed record Fenced(string HostId, VolumeReport? Volume) : IControlMessage;

/// <summary>A secret share in transit: sealed for <see cref="Host"/> only.</summary>
public sealed record ShareDto(string Volume, string Host, string View, byte[] Payload) : IControlMessage
{
    public static ShareDto From(SealedShare s) => new(s.Volume.ToString(), s.Host.ToString(), s.View.ToString(), s.Payload);
    public SealedShare ToShare() => new(Id160.Parse(Volume), Id160.Parse(Host), Id160.Parse(View), Payload);
}

/// <summary>Failover, step two, on the other fenced replicas: this host's share, re-sealed for the new primary
/// <paramref name="RecipientHost"/>, a host of the replica set, to the key it proved to this host (never one named here).</summary>
public sealed record ReleaseShare(string Volume, string RecipientHost) : IControlMessage;

/// <summary>Keep this share (sealed for this host) in the key file; answered with <see cref="ShareKept"/> or a failure.</summary>
public sealed record KeepShare(ShareDto Share) : IControlMessage;
public sealed record ShareKept(string Volume) : IControlMessage;

/// <summary>The share of the current view for <paramref name="Host"/>, a host of the replica set, sealed to the key it
/// proved to the primary (never one named here); answered with a <see cref="ShareDto"/> or a <see cref="ControlFailed"/>.</summary>
public sealed record RequestShare(string Volume, string Host) : IControlMessage;

/// <summary>Failover, step three, on the chosen replica: recover the secret and append the view change; answered with
/// its new <see cref="VolumeReport"/>.</summary>
public sealed record TakeOverVolume(string Volume, ShareDto[] Shares, string[] Replicas) : IControlMessage;

/// <summary>On the primary: a view change that replaces the replica set (a lost host by a new one); answered with the
/// new <see cref="VolumeReport"/>.</summary>
public sealed record ChangeReplicas(string Volume, string[] Replicas) : IControlMessage;

/// <summary>The public version at an lsn on this host (a returning replica looks for the common version); answered with <see cref="VersionAnswer"/>.</summary>
public sealed record GetVersionAt(string Volume, long Lsn) : IControlMessage;
/// <summary>Version null: no entry at that lsn here (beyond HeadLsn, or compacted away when at or below it).</summary>
public sealed record VersionAnswer(string? Version, long HeadLsn) : IControlMessage;

/// <summary>The version a volume held on this host was branched from (a new replica of a branch applies its branch entry
/// over its own copy of that version, or is copied whole without it); answered with <see cref="BranchSource"/>.</summary>
public sealed record GetBranchSource(string Volume) : IControlMessage;
/// <summary>Version null: not a branch, or not held here.</summary>
public sealed record BranchSource(string? Version) : IControlMessage;

/// <summary>Any refusal between hosts: one clear sentence.</summary>
public sealed record ControlFailed(string Reason) : IControlMessage;

/// <summary>A replica asks the primary's agent where its feed port is; answered with <see cref="FeedEndpoint"/>.</summary>
public sealed record WhereIsFeed : IControlMessage
{
    public static readonly WhereIsFeed Instance = new();
}

/// <summary>Where a host serves feeds: its member address's host and its feed port.</summary>
public sealed record FeedEndpoint(string Host, int Port) : IControlMessage;

/// <summary>Does the primary's chain have <paramref name="Version"/> at <paramref name="Lsn"/> (also when compaction
/// reclaimed that entry's header)? A replica asks before a full resync replaces its copy; answered with <see cref="VersionHeld"/>.</summary>
public sealed record HoldsVersion(string Volume, long Lsn, string Version) : IControlMessage;
public sealed record VersionHeld(bool Held) : IControlMessage;

/// <summary>One follower on a host, as its agent reports it: <see cref="State"/> one of the constants below. For
/// <see cref="Resyncing"/> <paramref name="Done"/> is how far into the volume's bytes the full resync got (the volume's
/// size is the whole); for <see cref="CatchingUp"/> Done of Total entries were applied since the feed started (Total:
/// the primary's head then minus this host's); <paramref name="Reason"/> why a <see cref="Retrying"/> follower failed.</summary>
public sealed record ReplicaSync(string Volume, string State, long Done = 0, long Total = 0, string? Reason = null) : IControlMessage
{
    /// <summary>Started, asking placement for the primary and comparing chains with it.</summary>
    public const string Connecting = "connecting";
    /// <summary>Fetching the volume whole (the primary compacted the history this host needs).</summary>
    public const string Resyncing = "resyncing";
    /// <summary>Receiving the entries it missed.</summary>
    public const string CatchingUp = "catching-up";
    /// <summary>Caught up with the primary once and applying its entries as they come.</summary>
    public const string Following = "following";
    /// <summary>The last attempt failed (no primary, refused, cut off); it tries again.</summary>
    public const string Retrying = "retrying";
}

/// <summary>Placement asks a primary how many stream bytes its replicas miss: for each i, the bytes of
/// <c>Volumes[i]</c>'s entries after <c>AfterLsns[i]</c> (VersionStreams.StreamBytesAfter). Answered with <see cref="LagsMeasured"/>.</summary>
public sealed record MeasureLags(string[] Volumes, long[] AfterLsns) : IControlMessage;
/// <summary>In the order asked; -1 where this host does not hold the volume.</summary>
public sealed record LagsMeasured(long[] Bytes) : IControlMessage;
