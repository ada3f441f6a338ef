// The damage maps (Volumes/DamageMap.cs) from the engine's side: stored blocks found bad by a read, compaction or a
// scrub are marked in every volume that still reads them from that place; a repair clears what it restored.
using System.Buffers.Binary;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice.Volumes;

/// <summary>
/// Marks and clears the damage of stored blocks in every volume that reads them (<see cref="LogStore.Damage"/>). It
/// owns no state of its own: each volume's damage map lives in its <see cref="VolumeState"/>, under its IndexLock.
/// </summary>
internal sealed class Damage
{
    [ThreadStatic] private static List<Extent>? t_damageExtents;

    private readonly LogStore _store;
    private readonly LogStoreOptions _options;

    internal Damage(LogStore store, LogStoreOptions options)
    {
        _store = store;
        _options = options;
    }

    /// <summary>
    /// Marks logical blocks [block, block+count), stored at log blocks [logBlock, logBlock+count), damaged in every
    /// volume whose index (its own, or a branch parent it reads through) still reads them from there: a branch sees
    /// the bad block of its parent, and a volume that has since moved or overwritten the block does not. Returns the
    /// ranges marked, per volume; only newly found ones are logged (one line each), so a known bad block met again by
    /// every read or scrub does not flood the log.
    /// </summary>
    internal List<ScrubFinding> Mark(long block, int count, long logBlock, string reason)
    {
        var found = new List<ScrubFinding>();
        var fresh = 0;
        var extents = t_damageExtents ??= new List<Extent>();
        foreach (var v in _store.VolumeStates.Values)
        {
            if (!v.Committed) continue;
            lock (v.IndexLock)
            {
                extents.Clear();
                v.Index.Lookup(block, count, extents);
                foreach (var e in extents)
                {
                    if (e.IsZero || e.LogBlock != logBlock + (e.Start - block)) continue;
                    var offset = e.Start * LogStore.BlockSize;
                    var length = (long)e.Count * LogStore.BlockSize;
                    var known = v.Damage.FirstOverlap(offset, length) is { } d && d.Offset <= offset && d.End >= offset + length && d.Reason == reason;
                    if (!known)
                    {
                        // Ranges damaged by lost entries keep that reason: it decides where their restoration applies.
                        if (v.Lost.Count == 0) v.Damage.Add(offset, length, reason);
                        else v.Damage.AddOutside(offset, length, reason, r => v.Lost.Exists(l => l.Reason == r));
                        v.Touch();
                        fresh++;
                    }
                    found.Add(new ScrubFinding(v.BaseId, offset, length, reason) { IsNew = !known });
                }
            }
        }
        extents.Clear();
        if (fresh > 0)
        {
            // The next checkpoint keeps the damage (a restart still knows what it cannot serve).
            _store.Checkpoints.NoteChange();
            foreach (var f in found)
                if (f.IsNew) _options.Log?.Invoke($"volume {f.Volume}: bytes {f.Offset}..{f.End - 1} cannot be served here: {f.Reason}");
        }
        return found;
    }

    /// <summary>
    /// After a repair wrote logical blocks [block, block+count) anew at log block <paramref name="newLogBlock"/>: every
    /// volume that now reads them from there forgets their damage. Damage a volume still reads from elsewhere stays.
    /// </summary>
    internal void ClearRepaired(long block, int count, long newLogBlock)
    {
        var extents = t_damageExtents ??= new List<Extent>();
        foreach (var v in _store.VolumeStates.Values)
        {
            if (!v.Committed) continue;
            lock (v.IndexLock)
            {
                if (v.Damage.Count == 0) continue;
                extents.Clear();
                v.Index.Lookup(block, count, extents);
                foreach (var e in extents)
                    if (!e.IsZero && e.LogBlock == newLogBlock + (e.Start - block))
                    {
                        v.Damage.Clear(e.Start * LogStore.BlockSize, (long)e.Count * LogStore.BlockSize);
                        v.Touch();
                    }
            }
        }
        extents.Clear();
        _store.Checkpoints.NoteChange();
    }

    /// <summary>The damage map's reason for stored blocks that fail their checksums: where they are, whose they are.</summary>
    internal static string BadBlocksReason(long logBlock, int count, long entryBlock, ReadOnlySpan<byte> meta)
    {
        var lsn = BinaryPrimitives.ReadInt64LittleEndian(meta[EntryHeader.OffLsn..]);
        return count == 1
            ? $"log block {logBlock} fails its checksum (entry at log block {entryBlock}, lsn {lsn})"
            : $"log blocks {logBlock}..{logBlock + count - 1} fail their checksums (entry at log block {entryBlock}, lsn {lsn})";
    }
}
