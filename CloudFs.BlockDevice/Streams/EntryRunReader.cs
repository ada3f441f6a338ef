// Reading a volume's entries out in stream form (segment seq zeroed, header CRC resealed), in runs of whole entries:
// from the volume's in-memory copies of its last entries when it keeps them, else read back from the device (the
// engine verifies each). One reader for a feed's chunks (VersionStreams.ReadEntries) and a stream's writes
// (VersionStreams.StreamAsync, which may go on following new appends).
using System.Buffers;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Streams;

/// <param name="readEntry">The engine's read of one entry from the device, verified, in stream form.</param>
/// <param name="stats">Counts where each entry came from.</param>
internal sealed class EntryRunReader(VolumeState vol, RecentEntries? recent, Func<VolumeState, long, byte[]> readEntry, StreamReadStats stats)
{
    /// <summary>What a stream writes at a time (at least one whole entry).</summary>
    private const int StreamRunBytes = 1 << 20;

    /// <summary>
    /// Appends to <paramref name="run"/> the entries after <paramref name="afterLsn"/> up to <paramref name="upTo"/>, as
    /// many as fit in <paramref name="maxBytes"/> counted from <paramref name="start"/> (at least one). Returns the lsn
    /// of the last one appended (<paramref name="afterLsn"/> when none).
    /// </summary>
    public long Copy(long afterLsn, long upTo, int maxBytes, ArrayBufferWriter<byte> run, int start)
    {
        var last = afterLsn;
        for (var lsn = afterLsn + 1; lsn <= upTo; lsn++)
        {
            var kept = recent?.LengthOf(lsn);
            var entry = kept is null ? ReadFromDevice(lsn) : null;
            var length = kept ?? entry!.Length;
            if (run.WrittenCount > start && run.WrittenCount - start + length > maxBytes) break;
            // Dropped since it was measured: read from the device after all.
            if (entry is null && !recent!.CopyTo(lsn, run)) entry = ReadFromDevice(lsn);
            if (entry is not null) run.Write(entry);
            else stats.FromMemory();
            last = lsn;
        }
        return last;
    }

    /// <summary>
    /// Goes on past the head with the entries placed in the log's write queue and kept in memory, not yet written (the
    /// device does not hold them yet), within the same <paramref name="maxBytes"/> from <paramref name="start"/>.
    /// </summary>
    public long CopyPlaced(long afterLsn, int maxBytes, ArrayBufferWriter<byte> run, int start)
    {
        if (recent is null) return afterLsn;
        var last = afterLsn;
        for (var lsn = afterLsn + 1; recent.LengthOf(lsn) is { } length; lsn++)
        {
            if (run.WrittenCount > start && run.WrittenCount - start + length > maxBytes) break;
            if (!recent.CopyTo(lsn, run)) break;
            stats.FromMemory();
            last = lsn;
        }
        return last;
    }

    private byte[] ReadFromDevice(long lsn)
    {
        stats.FromDevice();
        return readEntry(vol, lsn);
    }

    /// <summary>
    /// Writes every entry after <paramref name="afterLsn"/> up to the head, run by run; with <paramref name="follow"/>
    /// then every new one as it is appended, until cancelled. Ends when a fork split rewinds the volume below what was
    /// sent.
    /// </summary>
    public async Task WriteAsync(long afterLsn, Stream destination, bool follow, CancellationToken ct)
    {
        var run = new ArrayBufferWriter<byte>(64 << 10);
        var sent = afterLsn;
        while (true)
        {
            // Taken before looking at the head: an entry appended after the look still wakes the wait below.
            var appended = follow ? vol.Appended.Next() : null;
            long head;
            lock (vol.IndexLock) head = vol.Lsn;
            // Rewound below what was sent: the rest of this chain is not the volume's any more.
            if (head < sent) break;
            while (sent < head)
            {
                ct.ThrowIfCancellationRequested();
                run.ResetWrittenCount();
                sent = Copy(sent, head, StreamRunBytes, run, 0);
                await destination.WriteAsync(run.WrittenMemory, ct).ConfigureAwait(false);
            }
            if (!follow) break;
            await destination.FlushAsync(ct).ConfigureAwait(false);
            await appended!.WaitAsync(ct).ConfigureAwait(false);
        }
        await destination.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The volume's in-memory copies of its last entries, started now if it had none (it then keeps every new entry).</summary>
    public static RecentEntries KeepRecent(VolumeState vol)
    {
        if (vol.Recent is { } kept) return kept;
        lock (vol.IndexLock) return vol.Recent ??= new RecentEntries();
    }
}
