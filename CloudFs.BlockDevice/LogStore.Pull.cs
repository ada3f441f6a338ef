// Reading version streams out: the raw entries of a volume after an lsn, byte for byte as in the log (segment seq
// zeroed, header CRC resealed), in bounded runs: a primary feeds its replicas one run at a time (with the entries placed
// and not yet written when asked), and a stream (GET /log, `cloudfs stream`) writes run after run, optionally following
// new appends. One run reader (Streams/EntryRunReader) serves both; the engine's part is the verified read of an entry
// from the device.
using System.Buffers;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Streams;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

/// <summary>A run of whole entries of one volume, byte for byte as <see cref="LogStore.StreamAsync(Id160, long, Stream, bool, CancellationToken)"/> writes them.</summary>
/// <param name="LastLsn">Lsn of the last entry in <paramref name="Data"/> (the requested after-lsn when it is empty).</param>
/// <param name="HeadLsn">The volume's head lsn when the chunk was read.</param>
public sealed record EntryRun(ReadOnlyMemory<byte> Data, long LastLsn, long HeadLsn);

public sealed partial class LogStore
{
    /// <summary>Where the entries feeds and streams sent came from (memory or the device).</summary>
    public StreamReadStats StreamReads { get; } = new();

    /// <summary>
    /// Writes every entry after <paramref name="afterVersion"/> up to the head, byte for byte as in the log.
    /// With <paramref name="follow"/> it then keeps writing new entries until cancelled.
    /// Throws <see cref="UnknownVersionException"/> / <see cref="VersionCompactedException"/> before writing anything.
    /// </summary>
    public Task StreamAsync(Id160 afterVersion, Stream destination, bool follow, CancellationToken ct = default)
    {
        var (volume, lsn) = FindVersion(afterVersion);
        return StreamAsync(volume, lsn, destination, follow, ct, afterVersion);
    }

    /// <summary>As above from an lsn: 0 streams the whole chain including the creation entry (what a new replica needs).</summary>
    public Task StreamAsync(Id160 volume, long afterLsn, Stream destination, bool follow, CancellationToken ct = default) =>
        StreamAsync(volume, afterLsn, destination, follow, ct, null);

    private async Task StreamAsync(Id160 volume, long afterLsn, Stream destination, bool follow, CancellationToken ct, Id160? version)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        long oldest;
        lock (vol.IndexLock) oldest = vol.OldestStreamableLsn;
        if (afterLsn < 0) throw new InvalidRangeException("the lsn to stream after is negative");
        if (afterLsn + 1 < oldest) throw new VersionCompactedException(version ?? vol.BaseId, oldest);
        // A live stream keeps up from memory: the volume keeps its last entries from now on. A one-shot stream (mostly
        // older history) reads the device.
        var recent = follow ? EntryRunReader.KeepRecent(vol) : null;
        await new EntryRunReader(vol, recent, ReadEntryForStream, StreamReads).WriteAsync(afterLsn, destination, follow, ct).ConfigureAwait(false);
    }

    /// <summary>The whole entry with lsn <paramref name="lsn"/>, verified, with its device-specific segment seq zeroed.</summary>
    internal byte[] ReadEntryForStream(VolumeState vol, long lsn)
    {
        long block, oldest;
        lock (vol.IndexLock) { block = vol.Lsns.BlockOf(lsn); oldest = vol.OldestStreamableLsn; }
        if (lsn < oldest) throw new VersionCompactedException(vol.BaseId, oldest);
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        var h = ReadEntryMeta(block, meta, vol.BaseId);
        var offset = block * BlockSize;
        var pages = PageSpan.Around(offset, h.TotalBytes);
        using var buf = new AlignedBuffer(pages.Length);
        _device.Read(buf.Span, pages.Offset);
        var entry = buf.Span.Slice(pages.Lead, h.TotalBytes).ToArray();
        EntryCodec.Seal(entry, 0);
        var bad = EntryCodec.Verify(entry, out var check);
        if (bad is not null || check.Lsn != lsn || check.Volume != vol.BaseId)
            throw new DataCorruptionException(vol.BaseId, h.FirstBlock * BlockSize, (long)h.BlockCount * BlockSize, $"entry lsn {lsn}: {bad ?? "not the entry the lsn table names"}");
        return entry;
    }

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
        var recent = vol.IsWritable && vol.Replicas.Length > 1 ? EntryRunReader.KeepRecent(vol) : vol.Recent;
        if (afterLsn > head && !(unwritten && afterLsn <= Volatile.Read(ref vol.WriterLsn)))
            throw new InvalidRangeException($"volume {volume} has no entry {afterLsn} (its head is {head})");
        if (afterLsn + 1 < oldest && afterLsn < head) throw new VersionCompactedException(vol.BaseId, oldest);
        var start = into.WrittenCount;
        var runs = new EntryRunReader(vol, recent, ReadEntryForStream, StreamReads);
        var last = runs.Copy(afterLsn, head, maxBytes, into, start);
        if (unwritten && last >= head) last = runs.CopyPlaced(last, maxBytes, into, start);
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
    private static async Task<bool> WaitUntilAsync(VolumeState vol, Func<bool> done, TimeSpan timeout, CancellationToken ct)
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
}
