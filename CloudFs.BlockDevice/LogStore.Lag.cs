// How far a replica is behind this host's copy in bytes: the stream bytes of the entries after its lsn, what a
// catch-up would move. Exact for the newest MaxMeasuredEntries entries (their lengths come from the entries kept in
// memory, or from their headers); a replica further behind is estimated from those entries' mean length, so asking
// costs at most that many header reads however far behind it is.
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>The most entries whose lengths one question reads; the rest are estimated from their mean.</summary>
    public const int MaxMeasuredEntries = 4096;

    /// <summary>
    /// The stream bytes of <paramref name="volume"/>'s entries after <paramref name="afterLsn"/> through its head (0 when
    /// <paramref name="afterLsn"/> is at or beyond it): exact when at most <see cref="MaxMeasuredEntries"/> entries are
    /// missing, else the newest ones measured and the older ones counted at their mean length (also those compacted
    /// away, which a full resync replaces).
    /// </summary>
    public long StreamBytesAfter(Id160 volume, long afterLsn)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        long head, oldest;
        lock (vol.IndexLock) { head = vol.Lsn; oldest = vol.OldestStreamableLsn; }
        var first = Math.Max(afterLsn + 1, 1);
        if (first > head) return 0;
        var recent = vol.Recent;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        long measured = 0, bytes = 0;
        for (var lsn = head; lsn >= Math.Max(first, oldest) && measured < MaxMeasuredEntries; lsn--)
        {
            long length;
            if (recent?.LengthOf(lsn) is { } kept) length = kept;
            else
            {
                long block;
                lock (vol.IndexLock)
                {
                    if (lsn > vol.Lsns.Count) continue;
                    block = vol.Lsns.BlockOf(lsn);
                }
                try { length = HeaderAt(vol, block, lsn, meta).TotalBytes; }
                catch (CloudFsException) { continue; }   // compacted meanwhile, or unreadable: left to the estimate
            }
            bytes += length;
            measured++;
        }
        var count = head - first + 1;
        if (measured == 0) return 0;
        return measured == count ? bytes : bytes + (count - measured) * (bytes / measured);
    }
}
