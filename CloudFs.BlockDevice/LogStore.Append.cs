// Appending: volume creation and branches, data and zero entries, flushes; the chain is extended under a short
// per-volume lock, digests and CRCs are computed by the caller's thread before it.
using System.Buffers.Binary;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Streams;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore : IAppendSink
{
    /// <summary>
    /// Blocks one entry may carry on this device: <see cref="MaxEntryBlocks"/>, unless a segment is too small to hold
    /// such an entry (with its CRC table and the segment's header and end record).
    /// </summary>
    public int MaxBlocksPerEntry =>
        (int)Math.Min(MaxEntryBlocks, (_layout.SegmentSize - 2 * SegmentRecord.Size) / BlockSize - 1 - EntryHeader.TableSectorsFor(MaxEntryBlocks));

    internal static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Creates a volume: a fresh secret view-stamp (kept in the key file, never in the log) and a creation entry, durable on return.</summary>
    /// <param name="name">The volume's name (<see cref="VolumeName"/>), kept in its creation entry; null for none.</param>
    public Task<VolumeInfo> CreateVolumeAsync(long sizeBytes, VolumeMode mode, IReadOnlyList<Id160> replicas, CancellationToken ct = default, string? name = null)
    {
        ThrowIfDisposed();
        if (name is not null && VolumeName.Check(name) is { } badName) throw new InvalidRangeException(badName);
        if (sizeBytes <= 0 || sizeBytes % BlockSize != 0) throw new InvalidRangeException($"a volume size must be a positive multiple of {BlockSize} bytes, not {sizeBytes}");
        if (replicas.Count > CreatePayload.MaxReplicas) throw new InvalidRangeException($"at most {CreatePayload.MaxReplicas} replicas");
        return CreateAsync(new CreatePayload(sizeBytes, mode, replicas.ToArray(), Name: name), EntryKind.Create, () => new ExtentIndex(), ct);
    }

    /// <summary>Creates a writable volume whose unwritten ranges read through to the frozen version <paramref name="fromVersion"/> of a volume held here.</summary>
    public Task<VolumeInfo> BranchAsync(Id160 fromVersion, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var (srcId, lsn) = LocateInHistory(fromVersion);
        var src = Volume(srcId);
        // The branch starts as the version is: its data and its size then (not the source's size now).
        var (index, size) = BranchIndex(src, lsn, fromVersion);
        var payload = new CreatePayload(size, src.Mode, src.Replicas, fromVersion, srcId);
        return CreateAsync(payload, EntryKind.Branch, () => index, ct);
    }

    private async Task<VolumeInfo> CreateAsync(CreatePayload payload, EntryKind kind, Func<ExtentIndex> index, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        Span<byte> p = stackalloc byte[EntryHeader.BitmapBytes];
        var n = payload.Encode(p);
        var buf = EntryCodec.BuildMetadata(kind, Id160.Zero, 0, p[..n], Now);
        var secret = new byte[VersionChain.SecretSize];
        System.Security.Cryptography.RandomNumberGenerator.Fill(secret);
        var digest = new Id160(buf.Span[EntryHeader.OffDigest..]);
        var id = VersionChain.NextId(secret, Id160.Zero, digest);
        var baseId = VersionChain.PublicOf(id);
        EntryCodec.SetChain(buf.Span, baseId, 1, Id160.Zero, baseId);
        // The secret is durable in the key file before the creation entry can be acknowledged.
        _keys.Add(baseId, secret);
        var vol = new VolumeState(baseId, payload.SizeBytes, payload.Mode, payload.Replicas, payload.SourceVersion, secret, index())
        {
            Name = payload.Name,
            PendingLsn = 1, PendingId = id, PendingVersion = baseId,
        };
        if (!_volumes.TryAdd(baseId, vol)) throw new CloudFsException($"volume {baseId} already exists");
        var item = new EntryItem(buf, vol, kind, 1, baseId, 0, durable: true) { ClearId = id };
        _appender.Enqueue(item);
        try { await item.Done.Task.ConfigureAwait(false); }
        catch { _volumes.TryRemove(baseId, out _); throw; }
        return Info(vol);
    }

    /// <summary>The index of <paramref name="src"/> as of <paramref name="lsn"/> (its <paramref name="version"/>), frozen, as
    /// the parent of a new branch, and the source's size then.</summary>
    private (ExtentIndex Index, long SizeBytes) BranchIndex(VolumeState src, long lsn, Id160 version)
    {
        lock (src.IndexLock)
            if (lsn == src.Lsn) return (src.Index.Branch(), src.SizeBytes);
        // An older version: rebuilt from the volume's history base and the headers of the entries after it (no data
        // is read); older than the base (the retention time, LogStore.VersionRetention.cs) it is refused by name.
        var (index, size) = HistoricIndex(src, lsn, version);
        return (index.Branch(), size);
    }

    /// <summary>
    /// Appends one entry for <paramref name="volume"/> whose lsn must be <paramref name="expectedLsn"/> (head + 1):
    /// data of at most <see cref="MaxEntryBlocks"/> blocks, 512-aligned. All-zero blocks are not stored.
    /// Completes once the entry is in the log (durable too when <paramref name="durable"/>), in log order.
    /// </summary>
    public ValueTask<AppendResult> AppendDataAsync(Id160 volume, long expectedLsn, long offset, ReadOnlyMemory<byte> data, bool durable, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        return AppendData(Volume(volume), null, expectedLsn, offset, data, durable);
    }

    /// <summary>Appends one entry that zeroes (or trims) a 512-aligned range of any length.</summary>
    public ValueTask<AppendResult> AppendZeroAsync(Id160 volume, long expectedLsn, long offset, long length, bool durable, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        return AppendZero(Volume(volume), null, expectedLsn, offset, length, durable);
    }

    /// <summary>A data entry, by the chain's owner <paramref name="by"/> (null: no claim; refused while one is held).</summary>
    internal ValueTask<AppendResult> AppendData(VolumeState vol, ChainClaim? by, long expectedLsn, long offset, ReadOnlyMemory<byte> data, bool durable) =>
        new(AppendData(vol, by, expectedLsn, offset, data, durable, completion: null).Done.Task);

    /// <summary>As above; <paramref name="completion"/> (when not null) is told the outcome instead of the returned item's task.</summary>
    internal EntryItem AppendData(VolumeState vol, ChainClaim? by, long expectedLsn, long offset, ReadOnlyMemory<byte> data, bool durable, IAppendCompletion? completion)
    {
        ThrowIfDisposed();
        CheckWrite(vol, offset, data.Length);
        if (data.Length == 0 || data.Length > MaxBlocksPerEntry * BlockSize)
            throw new InvalidRangeException($"one entry carries 1..{MaxBlocksPerEntry} blocks here, not {data.Length} bytes");
        var buf = EntryCodec.BuildData(EntryKind.Data, vol.BaseId, offset / BlockSize, data.Span, Now);
        return Submit(vol, by, expectedLsn, buf, EntryKind.Data, durable, completion);
    }

    /// <summary>A zero entry, by the chain's owner <paramref name="by"/> (null: no claim; refused while one is held).</summary>
    internal ValueTask<AppendResult> AppendZero(VolumeState vol, ChainClaim? by, long expectedLsn, long offset, long length, bool durable) =>
        new(AppendZero(vol, by, expectedLsn, offset, length, durable, completion: null).Done.Task);

    /// <summary>As above; <paramref name="completion"/> (when not null) is told the outcome instead of the returned item's task.</summary>
    internal EntryItem AppendZero(VolumeState vol, ChainClaim? by, long expectedLsn, long offset, long length, bool durable, IAppendCompletion? completion)
    {
        ThrowIfDisposed();
        CheckWrite(vol, offset, length);
        if (length == 0) throw new InvalidRangeException("a zero entry needs a positive length");
        Span<byte> p = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(p, length / BlockSize);
        var buf = EntryCodec.BuildMetadata(EntryKind.Zero, vol.BaseId, offset / BlockSize, p, Now);
        return Submit(vol, by, expectedLsn, buf, EntryKind.Zero, durable, completion);
    }

    /// <summary>Convenience for tests and benchmarks: splits a write into entries with the next lsns.</summary>
    public async ValueTask<AppendResult> WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool durable = false, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        CheckWrite(vol, offset, data.Length);
        if (data.Length == 0) throw new InvalidRangeException("nothing to write");
        var max = MaxBlocksPerEntry * BlockSize;
        var parts = new List<Task<AppendResult>>();
        for (var done = 0; done < data.Length; done += max)
        {
            var chunk = data.Slice(done, Math.Min(max, data.Length - done));
            var buf = EntryCodec.BuildData(EntryKind.Data, volume, (offset + done) / BlockSize, chunk.Span, Now);
            parts.Add(Submit(vol, null, -1, buf, EntryKind.Data, durable && done + chunk.Length == data.Length).Done.Task);
        }
        // In order: the first failure is the reason (later parts fail only because they chained onto it).
        AppendResult last = default;
        foreach (var p in parts) last = await p.ConfigureAwait(false);
        return last;
    }

    public ValueTask<AppendResult> WriteZeroesAsync(Id160 volume, long offset, long length, bool durable = false, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        CheckWrite(vol, offset, length);
        if (length == 0) throw new InvalidRangeException("nothing to zero");
        Span<byte> p = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(p, length / BlockSize);
        var buf = EntryCodec.BuildMetadata(EntryKind.Zero, volume, offset / BlockSize, p, Now);
        return new ValueTask<AppendResult>(Submit(vol, null, -1, buf, EntryKind.Zero, durable).Done.Task);
    }

    /// <summary>Makes every entry appended before the call durable (one fdatasync for everything pending).</summary>
    /// <param name="onCallerIfIdle">When the log is idle, sync on the calling thread (it blocks for the device's
    /// flush) instead of waking the log's writer and completion threads: for a caller on the thread pool, not an
    /// actor's thread.</param>
    public ValueTask FlushAsync(bool onCallerIfIdle, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        if (onCallerIfIdle)
        {
            try
            {
                if (_appender.TryFlushIdle()) return ValueTask.CompletedTask;
            }
            catch (Exception e)
            {
                return ValueTask.FromException(e);
            }
        }
        return FlushAsync(ct);
    }

    /// <summary>Makes every entry appended before the call durable (one fdatasync for everything pending), queued
    /// behind them for the log's writer.</summary>
    public ValueTask FlushAsync(CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var f = new FlushItem();
        _appender.Enqueue(f);
        return new ValueTask(f.Done.Task.WaitAsync(ct));
    }

    /// <summary>A write into <paramref name="vol"/>'s range: in bounds, and the volume is not in the trash.</summary>
    private static void CheckWrite(VolumeState vol, long offset, long length)
    {
        CheckRange(vol, offset, length);
        if (Volatile.Read(ref vol.TrashedAtUnixMs) != 0) throw new VolumeInTrashException(vol.BaseId);
    }

    internal static void CheckRange(VolumeState vol, long offset, long length)
    {
        if (RangeRefusal(offset, length, vol.SizeBytes, vol.BaseId) is { } refused) throw refused;
    }

    /// <param name="what">What ends at <paramref name="sizeBytes"/>: "volume X", "version V of volume X".</param>
    internal static void CheckRange(long offset, long length, long sizeBytes, string what)
    {
        if (RangeRefusal(offset, length, sizeBytes, what) is { } refused) throw refused;
    }

    /// <summary>
    /// The one rule for a range of a volume (or of a version) of <paramref name="sizeBytes"/> bytes: 512-aligned,
    /// within the size. Null when it holds; otherwise why not. The volume's writer checks a whole write with it before
    /// splitting it into entries, and the engine each entry.
    /// </summary>
    public static InvalidRangeException? RangeRefusal(long offset, long length, long sizeBytes, string what) =>
        RangeHolds(offset, length, sizeBytes) ? null : RangeRefused(offset, length, sizeBytes, what);

    /// <summary>As above for volume <paramref name="volume"/> (its name is formatted only for a refusal).</summary>
    public static InvalidRangeException? RangeRefusal(long offset, long length, long sizeBytes, Id160 volume) =>
        RangeHolds(offset, length, sizeBytes) ? null : RangeRefused(offset, length, sizeBytes, $"volume {volume}");

    private static bool RangeHolds(long offset, long length, long sizeBytes) =>
        offset >= 0 && length >= 0 && offset % BlockSize == 0 && length % BlockSize == 0 && offset <= sizeBytes && length <= sizeBytes - offset;

    private static InvalidRangeException RangeRefused(long offset, long length, long sizeBytes, string what) =>
        offset < 0 || length < 0 || offset % BlockSize != 0 || length % BlockSize != 0
            ? new InvalidRangeException($"offset {offset} and length {length} must be non-negative multiples of {BlockSize}")
            : new InvalidRangeException($"bytes {offset}..{offset + length - 1} lie beyond the end of {what} ({sizeBytes} bytes)");

    /// <summary>
    /// Extends the chain under the volume's lock and queues the entry (inside the lock: per-volume log order = lsn order),
    /// for the chain's owner <paramref name="by"/> (null when nobody claims it).
    /// </summary>
    private EntryItem Submit(VolumeState vol, ChainClaim? by, long expectedLsn, EntryBuffer buf, EntryKind kind, bool durable,
        IAppendCompletion? completion = null)
    {
        var digest = new Id160(buf.Span[EntryHeader.OffDigest..]);
        using (var chain = vol.LockChain())
        {
            if (Ownership.ClaimRefusal(chain, by) is { } claimed) { buf.Dispose(); throw claimed; }
            if (vol.Secret is null) { buf.Dispose(); throw new NotPrimaryException(vol.BaseId); }
            // After a device failure the pending lsn is past entries that failed: the device's error, not an lsn mismatch.
            if (DeviceFailure is { } failed) { buf.Dispose(); throw new DeviceException(failed.Message, failed, failed.Errno); }
            var lsn = vol.PendingLsn + 1;
            if (expectedLsn >= 0 && expectedLsn != lsn)
            {
                buf.Dispose();
                throw new EntryRejectedException($"volume {vol.BaseId}: expected lsn {expectedLsn} but the next lsn is {lsn}", 0);
            }
            var id = VersionChain.NextId(vol.Secret, vol.PendingId, digest);
            var version = VersionChain.PublicOf(id);
            EntryCodec.SetChain(buf.Span, vol.BaseId, lsn, vol.PendingId, version);
            vol.PendingLsn = lsn;
            vol.PendingId = id;
            vol.PendingVersion = version;
            var item = new EntryItem(buf, vol, kind, lsn, version, vol.Epoch, durable) { ClearId = id, Completion = completion };
            _appender.Enqueue(item);
            return item;
        }
    }

    // ---- IAppendSink: runs on the writer thread ----

    Exception? IAppendSink.Admit(EntryItem e)
    {
        var v = e.Volume;
        if (v is null || e.Kind == EntryKind.Relocation) return null;
        if (e.RestoresLostEntry) return Restoration.AdmitRestoration(e, v);
        if (e.ReplacesBadEntry >= 0) return Restoration.AdmitBadEntryCopy(e, v);
        if (e.Kind == EntryKind.Rewind) return AdmitRewind(e, v);
        if (e.Epoch != Volatile.Read(ref v.Epoch) || e.Lsn != v.WriterLsn + 1)
            return new EntryRejectedException($"volume {v.BaseId}: lsn {e.Lsn} was built on an entry that failed to append", e.Lsn);
        return null;
    }

    void IAppendSink.Placed(EntryItem e)
    {
        if (e.Volume is not { } v || e.Kind == EntryKind.Relocation || e.RestoresEntry) return;
        // A rewind's lsn and version are the entry it goes back to: the next entry chains onto that one.
        v.WriterLsn = e.Lsn;
        v.WriterVersion = e.Version;
        v.WriterId = e.ClearId;
        if (e.ViewNumber >= 0) v.WriterViewNumber = e.ViewNumber;
        if (!StreamEntryReader.IsStreamed(e.Kind)) return;
        // A followed volume keeps a copy now, before the entry is on the device: its replicas are fed in parallel with
        // this host's own write (see ReadEntries with unwritten), as DRBD sends to its peer while it writes locally.
        if (v.Recent is { } recent)
        {
            recent.Offer(e.Lsn, e.Buffer.Span);
            v.Appended.Raise();
        }
    }

    BarrierItem? IAppendSink.CheckpointNow() => Checkpoints.ForBound();

    void IAppendSink.Rejected(EntryItem e, Exception error)
    {
        if (e.Volume is not { } v || e.Kind == EntryKind.Relocation || e.RestoresEntry) return;
        // Entries queued after this one were chained onto it: abandon them and restart the chain at the writer's head.
        using (var chain = v.LockChain()) v.RestartAtWriterHead(chain);
    }

    void IAppendSink.Applied(EntryItem e)
    {
        // Relocations, rewinds, resyncs and restored entries change the committed state in their AfterWrite step instead.
        if (!StreamEntryReader.IsStreamed(e.Kind) || e.RestoresEntry) return;
        var v = e.Volume!;
        ApplyCommitted(v, e.Buffer.Span, e.DeviceOffset / BlockSize);
        Checkpoints.NoteChange();
        // Live streams and feeders of the volume wake up and look (they wait on this signal, not on an event).
        v.Appended.Raise();
    }
}
