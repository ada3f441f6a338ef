// What the management actor asks a host's integrity agent (/user/cloudfs-integrity), and what a volume's actor asks its
// own host's agent (Hyperion adapter for the control messages; RepairRange stays on the node). The block bytes a
// repair fetches from a replica travel in ReadForRepair / ReplicaCopy (binary, VolumeMessageSerializer).
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Integrity;

/// <summary>Scrub this host's log (one volume's blocks, or every live block) now, at full speed, then repair what a
/// replica can restore; answered with <see cref="HostScrubbed"/> (or ControlFailed).</summary>
public sealed record ScrubHost(string? Volume) : IControlMessage;

/// <summary>A damaged range after a scrub: restored from a replica, or still damaged here (and why).</summary>
public sealed record HostScrubRange(string Volume, long Offset, long Length, bool Repaired, string Reason) : IControlMessage;

/// <summary>What one host's scrub read and found. <paramref name="Ranges"/>: what it repaired and every range of the
/// scrubbed volumes still damaged here afterwards (also damage known before this scrub), at most
/// <see cref="IntegrityAgent.MaxRangesListed"/>; <paramref name="RangesLeftOut"/> counts the rest.</summary>
public sealed record HostScrubbed(string HostId, long BytesVerified, long BytesRead, long BadBlocks, double Seconds, HostScrubRange[] Ranges, long RangesLeftOut = 0) : IControlMessage;

/// <summary>This host's head of a volume and how much of it it cannot serve; answered with <see cref="ReplicaState"/>.</summary>
public sealed record DescribeReplica(string Volume) : IControlMessage;
public sealed record ReplicaState(string HostId, bool Held, long Lsn, string Version, long DamagedBytes) : IControlMessage;

/// <summary>
/// A digest of every range of <paramref name="RangeBytes"/> of the volume's live content, once this host's head is at
/// <paramref name="Lsn"/> or beyond (waiting up to <paramref name="WaitMs"/>); answered with <see cref="VolumeDigested"/>
/// at whatever head it then has (the asker compares only digests of one version), or ControlFailed.
/// </summary>
public sealed record DigestVolume(string Volume, long RangeBytes, long Lsn, long WaitMs) : IControlMessage;

/// <summary>One host's digests (20 bytes per range) at head <paramref name="Lsn"/>; <paramref name="Unreadable"/> holds
/// one byte per range, 1 where this host cannot read the range (a bad block, or damage).</summary>
public sealed record VolumeDigested(string HostId, long Lsn, string Version, long RangeBytes, byte[] Digests, byte[] Unreadable) : IControlMessage;

/// <summary>Local, from a volume's actor (a read met damage) or the agent itself: restore what fails its checksum in the
/// range from the volume's other replicas; answered with <see cref="RangeRepaired"/>.</summary>
public sealed record RepairRange(Id160 Volume, long Offset, long Length, bool ForRead);

/// <summary>Blocks restored, and whether the range is still damaged here.</summary>
public sealed record RangeRepaired(long Blocks, bool StillDamaged);
