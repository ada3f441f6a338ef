// Event: one engine data entry (at most LogStore.MaxEntryBlocks blocks); the journal appends it with lsn = SequenceNr.
namespace CloudFs.Actors.Volumes.Events;

/// <param name="Durable">Append durably (FUA, or a Sync-mode volume on one node).</param>
public sealed record DataWritten(long Offset, ReadOnlyMemory<byte> Data, bool Durable) : IVolumeEvent
{
    public long Length => Data.Length;
}
