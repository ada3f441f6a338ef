// Reading a version stream in bounded runs (the primary feeds its replicas this way): the raw entries after an lsn, at
// most about maxBytes at a time, and a wait for the next append of a volume.
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
    public EntryRun ReadEntries(Id160 volume, long afterLsn, int maxBytes)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        if (afterLsn < 0) throw new InvalidRangeException("the lsn to read after is negative");
        long head, oldest;
        lock (vol.IndexLock) { head = vol.Lsn; oldest = vol.OldestStreamableLsn; }
        if (afterLsn > head) throw new InvalidRangeException($"volume {volume} has no entry {afterLsn} (its head is {head})");
        if (afterLsn + 1 < oldest && afterLsn < head) throw new VersionCompactedException(vol.BaseId, oldest);
        // A replicated volume's writer keeps its last entries from now on: a replica that keeps up reads them here.
        var recent = vol.IsWritable && vol.Replicas.Length > 1 ? KeepRecent(vol) : vol.Recent;
        var run = new ArrayBufferWriter<byte>(64 << 10);
        var last = afterLsn;
        for (var lsn = afterLsn + 1; lsn <= head; lsn++)
        {
            var kept = recent?.LengthOf(lsn);
            var entry = kept is null ? ReadEntryForStream(vol, lsn) : null;
            var length = kept ?? entry!.Length;
            if (run.WrittenCount > 0 && run.WrittenCount + length > maxBytes) break;
            // Dropped since it was measured: read from the device after all.
            if (entry is null && !recent!.CopyTo(lsn, run)) entry = ReadEntryForStream(vol, lsn);
            if (entry is not null) run.Write(entry);
            last = lsn;
        }
        return new EntryRun(run.WrittenMemory, last, head);
    }

    /// <summary>The volume's in-memory copies of its last entries, started now if it had none (it then keeps every new entry).</summary>
    private static Log.RecentEntries KeepRecent(Volumes.VolumeState vol)
    {
        if (vol.Recent is { } recent) return recent;
        lock (vol.IndexLock) return vol.Recent ??= new Log.RecentEntries();
    }

    /// <summary>
    /// Completes when <paramref name="volume"/>'s head lsn is beyond <paramref name="afterLsn"/> (at once if it already
    /// is), or after <paramref name="timeout"/>; true when there is something newer to read.
    /// </summary>
    public async Task<bool> WaitForAppendAsync(Id160 volume, long afterLsn, TimeSpan timeout, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        var newer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnAppended(EntryHeaderInfo info)
        {
            if (info.Volume == volume && info.Lsn > afterLsn) newer.TrySetResult();
        }
        EntryAppended += OnAppended;
        try
        {
            // Checked after subscribing, so an append between the check and the subscription is not missed.
            lock (vol.IndexLock) if (vol.Lsn > afterLsn) return true;
            try
            {
                await newer.Task.WaitAsync(timeout, ct).ConfigureAwait(false);
                return true;
            }
            catch (TimeoutException)
            {
                return false;
            }
        }
        finally
        {
            EntryAppended -= OnAppended;
        }
    }
}
