// Version streams of one store: reading a volume's entries out (a stream, a replica's feed, how far a replica is behind
// in bytes), the ranges that changed between two versions (VersionDiff), and applying streams from elsewhere (chain
// admission of each entry).
//
// Reading version streams out: the raw entries of a volume after an lsn, byte for byte as in the log (segment seq
// zeroed, header CRC resealed), in bounded runs: a primary feeds its replicas one run at a time (with the entries placed
// and not yet written when asked), and a stream (GET /log, `cloudfs stream`) writes run after run, optionally following
// new appends. One run reader (Streams/EntryRunReader) serves both; the engine's part is the verified read of an entry
// from the device.
//
// How far a replica is behind this host's copy in bytes: the stream bytes of the entries after its lsn, what a
// catch-up would move. Exact for the newest MaxMeasuredEntries entries (their lengths come from the entries kept in
// memory, or from their headers); a replica further behind is estimated from those entries' mean length, so asking
// costs at most that many header reads however far behind it is.
//
// Applying version streams: the public entry points over the one apply loop (Streams/StreamApply), and the chain
// admission of each streamed entry it asks for (creation and branch entries, chained entries, repeats and forks).
using System.Buffers;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Streams;

/// <summary>
/// Reading version streams out of the log and applying them into it (<see cref="LogStore.Streams"/>). Its own state is its
/// read counters (<see cref="Reads"/>); the entries kept in memory for feeds are each volume's
/// (<see cref="VolumeState.Recent"/>), and chain admission takes the volume's ChainLock.
/// </summary>
public sealed class VersionStreams : IStreamTarget
{
    private const int BlockSize = LogStore.BlockSize;

    private readonly LogStore _store;
    private readonly LogStoreOptions _options;
    private readonly ILogDevice _device;
    private readonly VersionDiff _diff;

    internal VersionStreams(LogStore store, LogStoreOptions options, ILogDevice device)
    {
        _store = store;
        _options = options;
        _device = device;
        _diff = new VersionDiff(store, device);
    }

    /// <summary>Where the entries feeds and streams sent came from (memory or the device).</summary>
    public StreamReadStats Reads { get; } = new();

    /// <summary>
    /// Writes every entry after <paramref name="afterVersion"/> up to the head, byte for byte as in the log.
    /// With <paramref name="follow"/> it then keeps writing new entries until cancelled.
    /// Throws <see cref="UnknownVersionException"/> / <see cref="VersionCompactedException"/> before writing anything.
    /// </summary>
    public Task StreamAsync(Id160 afterVersion, Stream destination, bool follow, CancellationToken ct = default)
    {
        var (volume, lsn) = _store.FindVersion(afterVersion);
        return StreamAsync(volume, lsn, destination, follow, ct, afterVersion);
    }

    /// <summary>As above from an lsn: 0 streams the whole chain including the creation entry (what a new replica needs).</summary>
    public Task StreamAsync(Id160 volume, long afterLsn, Stream destination, bool follow, CancellationToken ct = default) =>
        StreamAsync(volume, afterLsn, destination, follow, ct, null);

    private async Task StreamAsync(Id160 volume, long afterLsn, Stream destination, bool follow, CancellationToken ct, Id160? version)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        long oldest;
        lock (vol.IndexLock) oldest = vol.OldestStreamableLsn;
        if (afterLsn < 0) throw new InvalidRangeException("the lsn to stream after is negative");
        if (afterLsn + 1 < oldest) throw new VersionCompactedException(version ?? vol.BaseId, oldest);
        // A live stream keeps up from memory: the volume keeps its last entries from now on. A one-shot stream (mostly
        // older history) reads the device.
        var recent = follow ? EntryRunReader.KeepRecent(vol) : null;
        await new EntryRunReader(vol, recent, ReadEntryForStream, Reads).WriteAsync(afterLsn, destination, follow, ct).ConfigureAwait(false);
    }

    /// <summary>The whole entry with lsn <paramref name="lsn"/>, verified, with its device-specific segment seq zeroed.</summary>
    internal byte[] ReadEntryForStream(VolumeState vol, long lsn)
    {
        long block, oldest;
        lock (vol.IndexLock) { block = vol.Lsns.BlockOf(lsn); oldest = vol.OldestStreamableLsn; }
        if (lsn < oldest) throw new VersionCompactedException(vol.BaseId, oldest);
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(LogStore.MaxEntryBlocks))];
        var h = _store.ReadEntryHeader(block, meta, vol.BaseId);
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
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        if (afterLsn < 0) throw new InvalidRangeException("the lsn to read after is negative");
        long head, oldest;
        lock (vol.IndexLock) { head = vol.Lsn; oldest = vol.OldestStreamableLsn; }
        // A replicated volume's writer keeps its last entries from now on: a replica that keeps up reads them here.
        var recent = vol.IsWritable && vol.Replicas.Length > 1 ? EntryRunReader.KeepRecent(vol) : vol.Recent;
        if (afterLsn > head && !(unwritten && afterLsn <= Volatile.Read(ref vol.WriterLsn)))
            throw new InvalidRangeException($"volume {volume} has no entry {afterLsn} (its head is {head})");
        if (afterLsn + 1 < oldest && afterLsn < head) throw new VersionCompactedException(vol.BaseId, oldest);
        var start = into.WrittenCount;
        var runs = new EntryRunReader(vol, recent, ReadEntryForStream, Reads);
        var last = runs.Copy(afterLsn, head, maxBytes, into, start);
        if (unwritten && last >= head) last = runs.CopyPlaced(last, maxBytes, into, start);
        return (last, Math.Max(head, last));
    }

    /// <summary>The lsn of the last entry of <paramref name="volume"/> placed in the log's write queue (at or beyond its head).</summary>
    public long PlacedLsn(Id160 volume) => Volatile.Read(ref _store.Volume(volume).WriterLsn);

    /// <summary>Completes with true once <paramref name="volume"/>'s head is at <paramref name="lsn"/> or beyond (false after <paramref name="timeout"/>).</summary>
    public Task<bool> WaitForHeadAsync(Id160 volume, long lsn, TimeSpan timeout, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        return WaitUntilAsync(vol, () => { lock (vol.IndexLock) return vol.Lsn >= lsn; }, timeout, ct);
    }

    /// <summary>
    /// Completes with true when <see cref="ReadEntries(Id160, long, int, bool)"/> with unwritten has an entry after
    /// <paramref name="afterLsn"/> to return (one was applied, or placed and kept in memory), or with false after
    /// <paramref name="timeout"/>. Waits on the volume's own signal: no subscription to every volume's appends.
    /// </summary>
    public Task<bool> WaitForEntryAsync(Id160 volume, long afterLsn, TimeSpan timeout, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
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
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        long head, oldest;
        lock (vol.IndexLock) { head = vol.Lsn; oldest = vol.OldestStreamableLsn; }
        var first = Math.Max(afterLsn + 1, 1);
        if (first > head) return 0;
        var recent = vol.Recent;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(LogStore.MaxEntryBlocks))];
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
                try { length = _store.HeaderAt(vol, block, lsn, meta).TotalBytes; }
                catch (CloudFsException) { continue; }   // compacted meanwhile, or unreadable: left to the estimate
            }
            bytes += length;
            measured++;
        }
        var count = head - first + 1;
        if (measured == 0) return 0;
        return measured == count ? bytes : bytes + (count - measured) * (bytes / measured);
    }

    /// <summary>
    /// The byte ranges of <paramref name="volume"/> that changed between version <paramref name="from"/> (of its own
    /// chain or of a chain it was branched from, directly or not) and <paramref name="to"/> (a version of the volume;
    /// null: its current one). Throws <see cref="UnknownVersionException"/> for a version not held here,
    /// <see cref="InvalidRangeException"/> when a version is not in the volume's history, and
    /// <see cref="VersionCompactedException"/> (naming the version and the oldest still available) when entries
    /// between them were compacted away.
    /// </summary>
    public Task<ChangedRanges> ChangedBetweenAsync(Id160 volume, Id160 from, Id160? to = null, CancellationToken ct = default) =>
        _diff.ChangedBetweenAsync(volume, from, to, ct);

    /// <summary>
    /// Reads a stream and appends its entries in order, each verified first (checksums, chain, lsn, bounds).
    /// The first bad entry stops the apply; entries before it stay applied and durable.
    /// </summary>
    /// <param name="import">False: a creation or branch entry of a volume this host does not hold stops the apply
    /// (refused, nothing of it applied): taking in a volume from elsewhere is an import, which the caller asks for.</param>
    public async Task<ApplyResult> ApplyAsync(Stream source, CancellationToken ct = default, bool import = true)
    {
        _store.ThrowIfDisposed();
        return await StreamApply.Whole(this, import).RunAsync(source, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies a stream that may never end (follow mode), with the checks, stop rule and result of
    /// <see cref="ApplyAsync"/>. Whenever the source has nothing more ready, and every ~4 MiB or 256 entries, everything
    /// applied so far is flushed (group commit) and <paramref name="onDurable"/> is called, in order, with each volume's
    /// durable head when it grew (entries already held count: they are durable here too). Runs until the source ends, a
    /// bad entry, or <paramref name="ct"/>; on cancellation what was applied is still made durable and reported, then
    /// <see cref="OperationCanceledException"/> is thrown. A source that fails (I/O error) ends it like a truncated
    /// stream: an <see cref="ApplyResult"/> whose Error says so. On return a read of the source may still be pending
    /// (when the source ignores cancellation); disposing the source ends it. IsFork is set exactly when the refused entry conflicts
    /// with the chain held here (another version at a held lsn, or a next lsn that does not chain onto the head).
    /// </summary>
    public Task<ApplyResult> ApplyLiveAsync(Stream source, Action<ApplyProgress> onDurable, CancellationToken ct = default) =>
        ApplyLiveAsync(source, onDurable, null, null, ct);

    /// <summary>
    /// As <see cref="ApplyLiveAsync(Stream, Action{ApplyProgress}, CancellationToken)"/>, and <paramref name="onWritten"/>
    /// is called with a volume's head each time an entry is in the log (written, not yet flushed: as a local write
    /// before the next flush); entries already held count at once. It runs on a pool thread right after each write
    /// completes: it must be quick, and a report may overtake one for an earlier lsn (keep the highest). With <paramref name="flushes"/> (a
    /// stream of one volume), a pause of the stream flushes only what was asked for or has waited its MaxDelay; the
    /// every-256-entries / 4 MiB flushes and the final one stay.
    /// </summary>
    public async Task<ApplyResult> ApplyLiveAsync(Stream source, Action<ApplyProgress> onDurable, Action<ApplyProgress>? onWritten,
        LiveFlushes? flushes, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(onDurable);
        return await StreamApply.Live(this, onDurable, onWritten, flushes).RunAsync(source, ct).ConfigureAwait(false);
    }

    // ---- IStreamTarget: the engine's side of an apply (StreamApply) ----

    bool IStreamTarget.Holds(Id160 volume) => _store.VolumeStates.ContainsKey(volume);

    Task IStreamTarget.FlushAsync()
    {
        var flush = new FlushItem();
        _store.Appender.Enqueue(flush);
        return flush.Done.Task;
    }

    void IStreamTarget.Log(string message) => _options.Log?.Invoke(message);

    /// <summary>Chain admission of a streamed entry; on success it is queued with its own lsn, parent and version.</summary>
    StreamAdmission IStreamTarget.Admit(EntryBuffer buf, EntryHeader h)
    {
        if (h.Kind is EntryKind.Create or EntryKind.Branch)
        {
            var err = LogStore.CheckCreation(buf.Span, h, out var payload);
            if (err is not null) return StreamAdmission.Refused(err);
            if (_store.VolumeStates.ContainsKey(h.Volume)) return StreamAdmission.Held; // already held: the same chain start
            ExtentIndex index;
            if (h.Kind == EntryKind.Branch)
            {
                long lsn;
                try
                {
                    lsn = _store.FindVersion(payload!.SourceVersion!.Value).Lsn;
                    index = _store.BranchIndexOf(_store.Volume(payload.SourceVolume!.Value), lsn, payload.SourceVersion!.Value).Index;
                }
                catch (UnknownVersionException) { return StreamAdmission.Refused($"the branch source version {payload!.SourceVersion} is not held here"); }
                catch (VersionCompactedException e) { return StreamAdmission.Refused($"the branch source version {payload!.SourceVersion} is compacted away here: {e.Message}"); }
            }
            else index = new ExtentIndex();
            var secret = _store.Ownership.CreatorSecret(h, out var clearId);
            var v = new VolumeState(h.Volume, payload!.SizeBytes, payload.Mode, payload.Replicas, payload.SourceVersion, secret, index)
            {
                Name = payload.Name,
                PendingLsn = 1, PendingVersion = h.Version, PendingId = clearId,
            };
            if (!_store.VolumeStates.TryAdd(h.Volume, v)) return StreamAdmission.Held;
            var item = new EntryItem(buf, v, h.Kind, 1, h.Version, 0, durable: false) { ClearId = clearId };
            _store.Appender.Enqueue(item);
            return StreamAdmission.Queued(item);
        }
        if (!_store.VolumeStates.TryGetValue(h.Volume, out var vol)) return StreamAdmission.Refused($"volume {h.Volume} is not held here");
        using (var chain = vol.LockChain())
        {
            if (h.Lsn <= vol.PendingLsn)
            {
                // Already held? Then it is a harmless repeat; a different entry at a held lsn is a fork.
                long block = -1;
                lock (vol.IndexLock) if (h.Lsn <= vol.Lsn) block = vol.Lsns.BlockOf(h.Lsn);
                if (block >= 0 && SameVersionAt(vol, block, h.Version)) return StreamAdmission.Held;
                return StreamAdmission.Refused($"volume {vol.BaseId}: lsn {h.Lsn} is already held with another version (a fork)", isFork: true);
            }
            if (h.Lsn != vol.PendingLsn + 1) return StreamAdmission.Refused($"volume {vol.BaseId}: lsn {h.Lsn} does not follow the head lsn {vol.PendingLsn}");
            if (VersionChain.PublicOf(h.Parent) != vol.PendingVersion)
                return StreamAdmission.Refused($"volume {vol.BaseId}: the entry at lsn {h.Lsn} does not chain onto version {vol.PendingVersion} (a fork)", isFork: true);
            // A chain this host's writer owns takes no entry from elsewhere (repeats of held entries are fine, above).
            if (_store.Ownership.ClaimRefusal(chain, null) is { } claimed) return StreamAdmission.Refused(claimed.Message, isClaimed: true);
            var refused = _store.Ownership.AdmitChainedLocked(chain, buf, h, Id160.Zero, durable: false, out var item);
            return refused is null ? StreamAdmission.Queued(item!) : StreamAdmission.Refused(refused);
        }
    }

    private bool SameVersionAt(VolumeState vol, long block, Id160 version)
    {
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(LogStore.MaxEntryBlocks))];
        try { return _store.ReadEntryHeader(block, meta, vol.BaseId).Version == version; }
        catch (DataCorruptionException) { return false; }
    }
}
