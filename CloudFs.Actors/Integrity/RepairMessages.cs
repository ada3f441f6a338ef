// The data plane of a repair (binary VolumeMessageSerializer, never Hyperion): a damaged host asks another replica's
// integrity agent for its copy of a range, and gets the bytes with what it needs to judge them (LogStore.ApplyRepairAsync).
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Integrity;

/// <summary>Your copy of [Offset, Offset+Length) of the volume, please; the asker's head is (AskerLsn, AskerVersion).
/// Answered with <see cref="ReplicaCopy"/>, or ControlFailed when this host cannot serve it.</summary>
public sealed record ReadForRepair(Id160 Volume, long Offset, int Length, long AskerLsn, Id160 AskerVersion) : IVolumeProtocolMessage;

/// <summary>A replica's verified copy of a range, its head, whether its chain holds the asker's head, and the newest lsn
/// the range was written at there.</summary>
public sealed record ReplicaCopy(long HeadLsn, Id160 HeadVersion, bool HoldsAskerHead, long NewestSourceLsn, ReadOnlyMemory<byte> Data) : IVolumeProtocolMessage
{
    public static ReplicaCopy From(ReplicaBlocks b) => new(b.HeadLsn, b.HeadVersion, b.HoldsAskerHead, b.NewestSourceLsn, b.Data);
    public ReplicaBlocks ToBlocks() => new(HeadLsn, HeadVersion, HoldsAskerHead, NewestSourceLsn, Data);
}

/// <summary>Your copy of the whole entries <paramref name="FirstLsn"/>..<paramref name="LastLsn"/> of the volume, please
/// (the asker lost them to corruption). Answered with <see cref="LostEntriesCopy"/>, or ControlFailed when this host does
/// not hold them all.</summary>
public sealed record ReadLostEntries(Id160 Volume, long FirstLsn, long LastLsn) : IVolumeProtocolMessage;

/// <summary>A replica's copy of lost entries: whole entries in stream form, each verified there (and judged again by the
/// asker, EntryRestoration.RestoreLostEntriesAsync).</summary>
public sealed record LostEntriesCopy(ReadOnlyMemory<byte> Entries) : IVolumeProtocolMessage;
