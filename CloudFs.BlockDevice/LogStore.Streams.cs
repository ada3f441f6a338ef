// Version streams: the raw entries of a volume after a version, as in the log (segment seq zeroed, header CRC
// recomputed), optionally following new appends; and applying such a stream with full verification of every entry.
using System.Buffers;
using System.Threading.Channels;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
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
        Channel<long>? wake = null;
        Action<EntryHeaderInfo>? handler = null;
        // A live stream keeps up from memory: the volume keeps its last entries from now on. A one-shot stream (mostly
        // older history) reads the device.
        var recent = follow ? KeepRecent(vol) : null;
        var copy = recent is null ? null : new ArrayBufferWriter<byte>();
        if (follow)
        {
            wake = Channel.CreateBounded<long>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
            handler = info => { if (info.Volume == volume) wake.Writer.TryWrite(info.Lsn); };
            EntryAppended += handler;
        }
        try
        {
            var next = afterLsn + 1;
            while (true)
            {
                long head;
                lock (vol.IndexLock) head = vol.Lsn;
                // A fork split rewound the volume below what was sent: the rest of this chain is not the volume's any more.
                if (head < next - 1) break;
                for (; next <= head; next++)
                {
                    ct.ThrowIfCancellationRequested();
                    copy?.ResetWrittenCount();
                    if (copy is not null && recent!.CopyTo(next, copy))
                    {
                        await destination.WriteAsync(copy.WrittenMemory, ct).ConfigureAwait(false);
                        continue;
                    }
                    var bytes = ReadEntryForStream(vol, next);
                    await destination.WriteAsync(bytes, ct).ConfigureAwait(false);
                }
                if (!follow) break;
                await destination.FlushAsync(ct).ConfigureAwait(false);
                await wake!.Reader.ReadAsync(ct).ConfigureAwait(false);
            }
            await destination.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            if (handler is not null) EntryAppended -= handler;
        }
    }

    /// <summary>The whole entry with lsn <paramref name="lsn"/>, verified, with its device-specific segment seq zeroed.</summary>
    private byte[] ReadEntryForStream(VolumeState vol, long lsn)
    {
        long block, oldest;
        lock (vol.IndexLock) { block = vol.Lsns.BlockOf(lsn); oldest = vol.OldestStreamableLsn; }
        if (lsn < oldest) throw new VersionCompactedException(vol.BaseId, oldest);
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        var h = ReadEntryMeta(block, meta, vol.BaseId);
        var offset = block * BlockSize;
        var aligned = offset & ~(long)(Page - 1);
        var lead = (int)(offset - aligned);
        var total = (lead + h.TotalBytes + Page - 1) & ~(Page - 1);
        using var buf = new AlignedBuffer(total);
        _device.Read(buf.Span, aligned);
        var entry = buf.Span.Slice(lead, h.TotalBytes).ToArray();
        EntryCodec.Seal(entry, 0);
        var bad = EntryCodec.Verify(entry, out var check);
        if (bad is not null || check.Lsn != lsn || check.Volume != vol.BaseId)
            throw new DataCorruptionException(vol.BaseId, h.FirstBlock * BlockSize, (long)h.BlockCount * BlockSize, $"entry lsn {lsn}: {bad ?? "not the entry the lsn table names"}");
        return entry;
    }

    /// <summary>
    /// Reads a stream and appends its entries in order, each verified first (checksums, chain, lsn, bounds).
    /// The first bad entry stops the apply; entries before it stay applied and durable.
    /// </summary>
    /// <param name="import">False: a creation or branch entry of a volume this host does not hold stops the apply
    /// (refused, nothing of it applied): taking in a volume from elsewhere is an import, which the caller asks for.</param>
    public async Task<ApplyResult> ApplyAsync(Stream source, CancellationToken ct = default, bool import = true)
    {
        ThrowIfDisposed();
        long applied = 0, index = 0;
        Id160? volume = null, head = null;
        string? error = null;
        var fork = false;
        var refused = false;
        var pending = new List<Task<AppendResult>>();
        var header = new byte[EntryHeader.Size];
        while (true)
        {
            var got = await ReadFullAsync(source, header, ct).ConfigureAwait(false);
            if (got == 0) break;
            if (got < header.Length) { error = $"entry {index}: the stream ends inside an entry header"; break; }
            if (!EntryHeader.TryParse(header, out var h, out var perr)) { error = $"entry {index}: {perr}"; break; }
            if (h.Kind is EntryKind.Relocation or EntryKind.Rewind or EntryKind.ResyncData or EntryKind.ResyncCommit or EntryKind.Purge) { error = $"entry {index}: {h.Kind.ToString().ToLowerInvariant()} entries are never streamed"; break; }
            if (!import && h.Kind is EntryKind.Create or EntryKind.Branch && !_volumes.ContainsKey(h.Volume))
            {
                error = $"volume {h.Volume} is not held by this host, and a stream that creates it here is an import: ask for one (POST /log?import=1, cloudfs apply --import)";
                refused = true;
                break;
            }
            var buf = EntryCodec.Allocate(h.StoredCount);
            header.CopyTo(buf.Span);
            var rest = buf.Span.Length - header.Length;
            if (await ReadFullAsync(source, buf.Array.AsMemory(header.Length, rest), ct).ConfigureAwait(false) < rest)
            { buf.Dispose(); error = $"entry {index}: the stream ends inside the entry"; break; }
            var bad = EntryCodec.Verify(buf.Span, out _);
            if (bad is not null) { buf.Dispose(); error = $"entry {index} (lsn {h.Lsn}): {bad}"; break; }
            var (item, reason, isFork, skip) = AdmitApplied(buf, h);
            if (reason is not null) { buf.Dispose(); error = $"entry {index} (lsn {h.Lsn}): {reason}"; fork = isFork; break; }
            index++;
            volume = h.Volume;
            head = h.Version;
            if (skip) { buf.Dispose(); continue; }
            pending.Add(item!.Done.Task);
            applied++;
            if (pending.Count >= 256)
            {
                await Task.WhenAll(pending).ConfigureAwait(false);
                pending.Clear();
            }
        }
        // Everything applied so far becomes durable, even when the stream stopped at a bad entry.
        var flush = new FlushItem();
        _appender.Enqueue(flush);
        try
        {
            await Task.WhenAll(pending).ConfigureAwait(false);
            await flush.Done.Task.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is CloudFsException)
        {
            error ??= ex.Message;
        }
        return new ApplyResult(applied, volume, head, error, fork, refused);
    }

    private static async Task<int> ReadFullAsync(Stream s, Memory<byte> into, CancellationToken ct)
    {
        var done = 0;
        while (done < into.Length)
        {
            var n = await s.ReadAsync(into[done..], ct).ConfigureAwait(false);
            if (n == 0) break;
            done += n;
        }
        return done;
    }

    /// <summary>Chain admission of a streamed entry; on success it is queued with its own lsn, parent and version.</summary>
    private (EntryItem? Item, string? Error, bool Fork, bool Skip) AdmitApplied(EntryBuffer buf, EntryHeader h)
    {
        if (h.Kind is EntryKind.Create or EntryKind.Branch)
        {
            var err = CheckCreation(buf.Span, h, out var payload);
            if (err is not null) return (null, err, false, false);
            if (_volumes.ContainsKey(h.Volume)) return (null, null, false, true); // already held: the same chain start
            ExtentIndex index;
            if (h.Kind == EntryKind.Branch)
            {
                long lsn;
                try { lsn = FindVersion(payload!.SourceVersion!.Value).Lsn; }
                catch (UnknownVersionException) { return (null, $"the branch source version {payload!.SourceVersion} is not held here", false, false); }
                index = BranchIndex(Volume(payload.SourceVolume!.Value), lsn);
            }
            else index = new ExtentIndex();
            var secret = CreatorSecret(h, out var clearId);
            var v = new VolumeState(h.Volume, payload!.SizeBytes, payload.Mode, payload.Replicas, payload.SourceVersion, secret, index)
            {
                Name = payload.Name,
                PendingLsn = 1, PendingVersion = h.Version, PendingId = clearId,
            };
            if (!_volumes.TryAdd(h.Volume, v)) return (null, null, false, true);
            var item = new EntryItem(buf, v, h.Kind, 1, h.Version, 0, durable: false) { ClearId = clearId };
            _appender.Enqueue(item);
            return (item, null, false, false);
        }
        if (!_volumes.TryGetValue(h.Volume, out var vol)) return (null, $"volume {h.Volume} is not held here", false, false);
        lock (vol.ChainLock)
        {
            if (h.Lsn <= vol.PendingLsn)
            {
                // Already held? Then it is a harmless repeat; a different entry at a held lsn is a fork.
                long block = -1;
                lock (vol.IndexLock) if (h.Lsn <= vol.Lsn) block = vol.Lsns.BlockOf(h.Lsn);
                if (block >= 0 && SameVersionAt(vol, block, h.Version)) return (null, null, false, true);
                return (null, $"volume {vol.BaseId}: lsn {h.Lsn} is already held with another version (a fork)", true, false);
            }
            if (h.Lsn != vol.PendingLsn + 1) return (null, $"volume {vol.BaseId}: lsn {h.Lsn} does not follow the head lsn {vol.PendingLsn}", false, false);
            if (VersionChain.PublicOf(h.Parent) != vol.PendingVersion)
                return (null, $"volume {vol.BaseId}: the entry at lsn {h.Lsn} does not chain onto version {vol.PendingVersion} (a fork)", true, false);
            var refused = AdmitChainedLocked(vol, buf, h, Id160.Zero, durable: false, out var item);
            return (item, refused, false, false);
        }
    }

    private bool SameVersionAt(VolumeState vol, long block, Id160 version)
    {
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        try { return ReadEntryMeta(block, meta, vol.BaseId).Version == version; }
        catch (DataCorruptionException) { return false; }
    }
}
