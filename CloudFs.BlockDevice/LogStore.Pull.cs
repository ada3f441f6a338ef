// Reading a version stream in bounded runs (the primary feeds its replicas this way): the raw entries after an lsn, at
// most about maxBytes at a time (with the ones placed and not yet written when asked), and waits for the next entry.
using System.Buffers;

namespace CloudFs.BlockDevice;

/// <summary>A run of whole entries of one volume, byte for byte as <see cref="LogStore.StreamAsync(Id160, long, Stream, bool, CancellationToken)"/> writes them.</summary>
/// <param name="LastLsn">Lsn of the last entry in <paramref name="Data"/> (the requested after-lsn when it is empty).</param>
/// <param name="HeadLsn">The volume's head lsn when the chunk was read.</param>
public sealed record EntryRun(ReadOnlyMemory<byte> Data, long LastLsn, long HeadLsn);

public sealed partial class LogStore
{
    /// <summary>
    /// The entries of <paramref name="volume"/> after <paramref name="afterLsn"/> (0 includes the creation entry), whole
    /// entries only, as many as fit in <paramref name="maxBytes"/> (at least one when any is newer). Each entry is
    /// verified as it is read. Throws <see cref="VersionCompactedException"/> when the first one was compacted away.
    /// </summary>
    public EntryRun ReadEntries(Id160 volume, long afterLsn, int maxBytes) => ReadEntries(volume, afterLsn, maxBytes, unwritten: false);

    /// <summary>
    /// <see cref="ReadEntries(Id160, long, int)"/>; with <paramref name="unwritten"/> the run goes on past the volume's
    /// head with the entries this host has placed in its log's write queue and not yet written (kept in memory from
    /// the moment they are placed), so a replica can be fed while this host writes its own copy. Such an entry is on
    /// the device a moment later, unless this host dies or its device fails first: then it was never acknowledged.
    /// </summary>
    public EntryRun ReadEntries(Id160 volume, long afterLsn, int maxBytes, bool unwritten)
    {
        var run = new ArrayBufferWriter<byte>(64 << 10);
        var (last, head) = ReadEntries(volume, afterLsn, maxBytes, unwritten, run);
        return new EntryRun(run.WrittenMemory, last, head);
    }

    /// <summary>
    /// <see cref="ReadEntries(Id160, long, int, bool)"/> appended to <paramref name="into"/> (a feed reuses one buffer
    /// for every chunk, after its own frame header): returns the last lsn appended (<paramref name="afterLsn"/> when
    /// none) and the volume's head.
    /// </summary>
    public (long LastLsn, long HeadLsn) ReadEntries(Id160 volume, long afterLsn, int maxBytes, bool unwritten, ArrayBufferWriter<byte> into)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        if (afterLsn < 0) throw new InvalidRangeException("the lsn to read after is negative");
        long head, oldest;
        lock (vol.IndexLock) { head = vol.Lsn; oldest = vol.OldestStreamableLsn; }
        // A replicated volume's writer keeps its last entries from now on: a replica that keeps up reads them here.
        var recent = vol.IsWritable && vol.Replicas.Length > 1 ? KeepRecent(vol) : vol.Recent;
        if (afterLsn > head && !(unwritten && afterLsn <= Volatile.Read(ref vol.WriterLsn)))
            throw new InvalidRangeException($"volume {volume} has no entry {afterLsn} (its head is {head})");
        if (afterLsn + 1 < oldest && afterLsn < head) throw new VersionCompactedException(vol.BaseId, oldest);
        var run = into;
        var start = into.WrittenCount;
        var last = afterLsn;
        for (var lsn = afterLsn + 1; lsn <= head; lsn++)
        {
            var kept = recent?.LengthOf(lsn);
            var entry = kept is null ? ReadEntryForStream(vol, lsn) : null;
            var length = kept ?? entry!.Length;
            if (run.WrittenCount > start && run.WrittenCount - start + length > maxBytes) break;
            // Dropped since it was measured: read from the device after all.
            if (entry is null && !recent!.CopyTo(lsn, run)) entry = ReadEntryForStream(vol, lsn);
            if (entry is not null) run.Write(entry);
            last = lsn;
        }
        // Placed and not written yet: only the in-memory copies exist (the device does not hold them yet).
        if (unwritten && recent is not null && last >= head)
            for (var lsn = last + 1; recent.LengthOf(lsn) is { } length; lsn++)
            {
                if (run.WrittenCount > start && run.WrittenCount - start + length > maxBytes) break;
                if (!recent.CopyTo(lsn, run)) break;
                last = lsn;
            }
        return (last, Math.Max(head, last));
    }

    /// <summary>The lsn of the last entry of <paramref name="volume"/> placed in the log's write queue (at or beyond its head).</summary>
    public long PlacedLsn(Id160 volume) => Volatile.Read(ref Volume(volume).WriterLsn);

    /// <summary>Completes with true once <paramref name="volume"/>'s head is at <paramref name="lsn"/> or beyond (false after <paramref name="timeout"/>).</summary>
    public Task<bool> WaitForHeadAsync(Id160 volume, long lsn, TimeSpan timeout, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        return WaitUntilAsync(vol, () => { lock (vol.IndexLock) return vol.Lsn >= lsn; }, timeout, ct);
    }

    /// <summary>
    /// Completes with true when <see cref="ReadEntries(Id160, long, int, bool)"/> with unwritten has an entry after
    /// <paramref name="afterLsn"/> to return (one was applied, or placed and kept in memory), or with false after
    /// <paramref name="timeout"/>. Waits on the volume's own signal: no subscription to every volume's appends.
    /// </summary>
    public Task<bool> WaitForEntryAsync(Id160 volume, long afterLsn, TimeSpan timeout, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        return WaitUntilAsync(vol, () =>
        {
            lock (vol.IndexLock) if (vol.Lsn > afterLsn) return true;
            return vol.Recent?.LengthOf(afterLsn + 1) is not null;
        }, timeout, ct);
    }

    /// <summary>True as soon as <paramref name="done"/> holds, looked at again each time the volume's signal is raised;
    /// false after <paramref name="timeout"/>.</summary>
    private static async Task<bool> WaitUntilAsync(Volumes.VolumeState vol, Func<bool> done, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            // Taken before looking, so a raise between the look and the wait is not missed.
            var next = vol.Appended.Next();
            if (done()) return true;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return false;
            try { await next.WaitAsync(left, ct).ConfigureAwait(false); }
            catch (TimeoutException) { return false; }
        }
    }

    /// <summary>The volume's in-memory copies of its last entries, started now if it had none (it then keeps every new entry).</summary>
    private static Log.RecentEntries KeepRecent(Volumes.VolumeState vol)
    {
        if (vol.Recent is { } recent) return recent;
        lock (vol.IndexLock) return vol.Recent ??= new Log.RecentEntries();
    }
}
