// The pure part of a VolumeActor: what it knows of its volume and which events a command becomes.
// Immutable; tested without actors.
using CloudFs.Actors.Volumes.Events;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

public sealed record VolumeState(Id160 VolumeId, bool Exists, long SizeBytes, VolumeMode Mode, bool IsWritable, long Lsn, Id160 Version)
{
    /// <summary>Largest event payload: one engine entry.</summary>
    public const int MaxEventBytes = LogStore.MaxEntryBlocks * LogStore.BlockSize;

    /// <summary>Largest payload of one event on this store (smaller than <see cref="MaxEventBytes"/> when its
    /// segments are small: an entry never spans segments).</summary>
    public int EventBytes { get; init; } = MaxEventBytes;

    /// <summary>Largest read one message may ask for (NBD clients ask 32 MiB at most).</summary>
    public const int MaxReadBytes = 32 << 20;

    public static VolumeState Unknown(Id160 volume) => new(volume, false, 0, VolumeMode.Async, false, 0, Id160.Zero);

    public static VolumeState FromHead(VolumeInfo info) =>
        new(info.BaseId, true, info.SizeBytes, info.Mode, info.IsWritable, info.Lsn, info.CurrentVersion);

    /// <summary>The state after event <paramref name="e"/> was stored with sequence number (lsn) <paramref name="lsn"/>.</summary>
    public VolumeState Apply(IVolumeEvent e, long lsn) => e switch
    {
        EntryReplayed r => this with { Lsn = r.Header.Lsn, Version = r.Header.Version, Exists = true },
        _ => this with { Lsn = lsn },
    };

    /// <summary>
    /// A write becomes events of at most one engine entry each; durable for FUA only. A sync volume's write waits for
    /// a majority of its replica set to hold it in their logs (VolumeActor), durably only when the client asks (FUA,
    /// FLUSH), as the issue defines sync mode; a flush per write would also hold back what the replicas are sent.
    /// </summary>
    public Decision Decide(long offset, ReadOnlyMemory<byte> data, bool fua)
    {
        if (CheckWritable(offset, data.Length) is { } error) return Decision.Refused(error);
        var durable = fua;
        var events = new IVolumeEvent[(data.Length + EventBytes - 1) / EventBytes];
        for (var i = 0; i < events.Length; i++)
        {
            var at = i * EventBytes;
            // Only the last event of a multi-entry write needs to wait for durability: the flush covers all before it.
            events[i] = new DataWritten(offset + at, data.Slice(at, Math.Min(EventBytes, data.Length - at)), durable && i == events.Length - 1);
        }
        return Decision.Accepted(events);
    }

    public Decision DecideZeroes(long offset, long length, bool fua)
    {
        if (CheckWritable(offset, length) is { } error) return Decision.Refused(error);
        return length == 0
            ? Decision.Accepted([])
            : Decision.Accepted([new ZeroesWritten(offset, length, fua)]);
    }

    /// <summary>Null when a read of the range may go to the engine; otherwise why not.</summary>
    public Exception? CheckRead(long offset, long length)
    {
        if (!Exists) return new VolumeNotFoundException(VolumeId);
        if (length > MaxReadBytes) return new InvalidRangeException($"a read of {length} bytes is larger than the limit of {MaxReadBytes}");
        return CheckRange(offset, length);
    }

    private Exception? CheckWritable(long offset, long length)
    {
        if (!Exists) return new VolumeNotFoundException(VolumeId);
        if (!IsWritable) return new NotPrimaryException(VolumeId);
        return CheckRange(offset, length);
    }

    private Exception? CheckRange(long offset, long length) => LogStore.RangeRefusal(offset, length, SizeBytes, VolumeId);
}
