// Messages to the placement singleton (Hyperion adapter): create a volume, find a volume's primary (listing and
// lookup: Management.ListVolumePage and Management.LocateVolume).
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

/// <summary>Create a volume with N replicas; answered with a Management.VolumeCreated or a Management.CommandFailed.</summary>
/// <param name="Name">The volume's name, unique in the cluster (null for none).</param>
public sealed record PlaceVolume(int Replicas, long SizeBytes, VolumeMode Mode, string? Name = null) : IControlMessage;

/// <summary>`cloudfs trash purge`: every host holding the volume (in the trash) drops its copy; answered with <see cref="PurgeDone"/>.</summary>
public sealed record PurgeVolume(string Volume) : IControlMessage;
/// <summary>Purged: the hosts that dropped their copy; Away: holders that could not be asked (they purge theirs when
/// they are back); Error: why a host refused (the volume stays known then).</summary>
public sealed record PurgeDone(string Volume, string[] Purged, string[] Away, string? Error) : IControlMessage;

/// <summary>Answered with <see cref="PrimaryIs"/>.</summary>
public sealed record WhereIsPrimary(string Volume) : IControlMessage;
/// <summary>HostId and Address are null while no live primary is known; Known is false when none is coming: no host
/// reported the volume, or no failover is under way or can start (an asker need not wait for a primary then).</summary>
public sealed record PrimaryIs(string Volume, bool Known, string? HostId, string? Address) : IControlMessage;

/// <summary>A host's log device failed (it says so at once, and in every HostDescription after): the volumes it is the
/// primary of fail over as if it had died, and it is chosen for nothing until it comes back on a good device.</summary>
public sealed record HostDeviceFailed(string HostId, string Address, string Reason) : IControlMessage;
