// Reading: index lookup, holes as zeros without I/O, stored runs with aligned reads verified block by block against
// the entry's CRCs; and the header-only views (Map, ReadHeaders, FindVersion).
using System.Buffers.Binary;
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    private const int ReadChunk = 1 << 20;
    private const int SmallReadChunk = 64 << 10;
    private const int Page = AlignedBuffer.Alignment;

    [ThreadStatic] private static List<Extent>? t_extents;
    private long _readEpoch;
    private readonly long[] _readers = new long[2];

    /// <summary>
    /// Counts a reader from its index lookup to the end of its device reads: compaction frees no segment meanwhile,
    /// and a lookup after a free already sees the relocated places. Returns the slot to pass to <see cref="ExitRead"/>.
    /// </summary>
    internal long EnterRead()
    {
        var slot = Interlocked.Read(ref _readEpoch) & 1;
        Interlocked.Increment(ref _readers[slot]);
        return slot;
    }

    internal void ExitRead(long slot) => Interlocked.Decrement(ref _readers[slot]);

    /// <summary>Tests only: readers counted now, and how many times compaction waited for earlier readers.</summary>
    /// <summary>Read buffers allocated so far, small and large (tests).</summary>
    internal (long Small, long Large) ReadBuffersCreated => _readPool.Created;

    internal long ReadersInFlight => Interlocked.Read(ref _readers[0]) + Interlocked.Read(ref _readers[1]);
    internal long ReadEpoch => Interlocked.Read(ref _readEpoch);

    /// <summary>Waits until every read that started before now has finished (compaction, before freeing segments).</summary>
    private void WaitForEarlierReads()
    {
        var old = Interlocked.Increment(ref _readEpoch) - 1;
        var spin = new SpinWait();
        while (Interlocked.Read(ref _readers[old & 1]) != 0) spin.SpinOnce();
    }

    /// <summary>
    /// Reads a 512-aligned range as of the current head: the last written bytes, zeros for holes (no disk access).
    /// A stored block whose checksum fails throws <see cref="DataCorruptionException"/> for the range.
    /// </summary>
    public ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        CheckRange(vol, offset, destination.Length);
        ct.ThrowIfCancellationRequested();
        var extents = t_extents ??= new List<Extent>();
        extents.Clear();
        var first = offset / BlockSize;
        // A reader from the lookup on: the places it finds are not freed and reused before its reads are done.
        var slot = EnterRead();
        DamagedRange? damaged;
        try
        {
            lock (vol.IndexLock)
            {
                damaged = vol.Damage.Count == 0 ? null : vol.Damage.FirstOverlap(offset, destination.Length);
                if (damaged is null) vol.Index.Lookup(first, destination.Length / BlockSize, extents);
            }
        }
        catch { ExitRead(slot); throw; }
        if (damaged is { } d)
        {
            ExitRead(slot);
            throw new DataCorruptionException(volume, d.Offset, d.Length, d.Reason);
        }
        var storedBytes = 0L;
        foreach (var e in extents) if (!e.IsZero) storedBytes += (long)e.Count * BlockSize;
        if (storedBytes == 0)
        {
            // Holes and zeroed runs only: answered from the index, no disk access, no thread hop.
            ExitRead(slot);
            destination.Span.Clear();
            extents.Clear();
            return ValueTask.CompletedTask;
        }
        // What the page cache holds (and verifies) is copied here on the caller's thread, without a thread hop.
        if (_cachedReads && storedBytes <= InlineReadLimit)
        {
            bool served;
            try { served = TryFillFromCache(first, extents, destination.Span); }
            catch (Exception e) { ExitRead(slot); extents.Clear(); return ValueTask.FromException(e); }
            if (served)
            {
                ExitRead(slot);
                extents.Clear();
                return ValueTask.CompletedTask;
            }
        }
        // Device reads block their thread (pread): run them on the pool so a connection's reads proceed in parallel
        // instead of queueing behind each other on the caller's thread. (No token for Task.Run: the reader must end.)
        var runs = extents.ToArray();
        extents.Clear();
        return new ValueTask(Task.Run(() =>
        {
            try { Fill(vol, first, runs, destination.Span); }
            finally { ExitRead(slot); }
        }));
    }

    /// <summary>Stored bytes a read may copy from the page cache on its caller's thread; larger reads go to the pool.</summary>
    private const int InlineReadLimit = 128 << 10;

    /// <summary>
    /// Serves a read wholly from the page cache without waiting: true when every stored block was cached, its entry's
    /// checksums were in the meta cache, and every block verified. False otherwise (nothing is marked, the bytes in
    /// <paramref name="dest"/> are undefined): the waiting read on the pool then reads, verifies and reports.
    /// </summary>
    private bool TryFillFromCache(long first, List<Extent> extents, Span<byte> dest)
    {
        var covered = 0L;
        foreach (var e in extents)
        {
            var at = (int)((e.Start - first) * BlockSize);
            var len = e.Count * BlockSize;
            if (e.IsZero) continue;
            if (_metaCache.Get(e.EntryBlock) is not { } meta) return false;
            var target = dest.Slice(at, len);
            if (!_device.ReadCached(target, e.LogBlock * BlockSize, wait: false)) return false;
            if (FirstUnverified(meta, e, target) >= 0) return false;
        }
        foreach (var e in extents)
        {
            var at = (int)((e.Start - first) * BlockSize);
            if (at > covered) dest[(int)covered..at].Clear();
            var len = e.Count * BlockSize;
            if (e.IsZero) dest.Slice(at, len).Clear();
            covered = at + len;
        }
        if (covered < dest.Length) dest[(int)covered..].Clear();
        return true;
    }

    /// <summary>Index (within <paramref name="e"/>) of the first block of <paramref name="blocks"/> that fails its entry's CRC; -1 when all verify.</summary>
    private static int FirstUnverified(byte[] meta, Extent e, ReadOnlySpan<byte> blocks)
    {
        int stored = BinaryPrimitives.ReadUInt16LittleEndian(meta.AsSpan(EntryHeader.OffStoredCount));
        var dataStart = e.EntryBlock + 1 + EntryHeader.TableSectorsFor(stored);
        for (var i = 0; i < e.Count; i++)
        {
            var k = (int)(e.LogBlock + i - dataStart);
            if (k < 0 || k >= stored || Crc32C.Compute(blocks.Slice(i * BlockSize, BlockSize)) != EntryCodec.GetBlockCrc(meta, k)) return i;
        }
        return -1;
    }

    internal void Fill(VolumeState vol, long first, Extent[] extents, Span<byte> dest)
    {
        var covered = 0L;
        foreach (var e in extents)
        {
            var at = (int)((e.Start - first) * BlockSize);
            if (at > covered) dest[(int)covered..at].Clear();
            var len = e.Count * BlockSize;
            if (e.IsZero) dest.Slice(at, len).Clear();
            else ReadRun(vol, e, dest.Slice(at, len));
            covered = at + len;
        }
        if (covered < dest.Length) dest[(int)covered..].Clear();
    }

    /// <summary>
    /// Reads one stored run in chunks (through the page cache when cached reads are on) and checks every block against
    /// its CRC. A block that fails (or a run whose entry header fails) is marked in the damage map of every volume that
    /// reads it, then the read throws <see cref="DataCorruptionException"/> for exactly the bad blocks.
    /// </summary>
    internal void ReadRun(VolumeState vol, Extent e, Span<byte> dest)
    {
        if (ReadRunChecked(vol, e, dest, null, cached: _cachedReads) is not { } bad) return;
        Damage.Mark(e.Start + bad.At, bad.Count, e.LogBlock + bad.At, bad.Reason);
        throw new DataCorruptionException(vol.BaseId, (e.Start + bad.At) * BlockSize, (long)bad.Count * BlockSize, bad.Reason);
    }

    /// <summary>Blocks [At, At+Count) of a run (relative to its start) that cannot be served, and why.</summary>
    internal readonly record struct BadRun(int At, int Count, string Reason);

    /// <summary>Reads a run of stored blocks and checks each against its entry's CRC (damage marked): false when one fails.</summary>
    internal bool ReadRunVerified(VolumeState vol, Extent e, Span<byte> dest) => ReadRunChecked(vol, e, dest, null) is null;

    /// <summary>
    /// Reads and verifies one stored run into <paramref name="dest"/>. With <paramref name="all"/> null it stops at the
    /// first bad block and returns it; otherwise it reads on, adds every bad run (consecutive bad blocks as one) to
    /// <paramref name="all"/> and returns the first. Null when every block verifies. Bad blocks' bytes in
    /// <paramref name="dest"/> are whatever the device returned: never to be used. With <paramref name="cached"/> the
    /// blocks (and a header not in the meta cache) are read through the page cache; a chunk in which any block fails
    /// is dropped from the cache and read again from the device, whose bytes alone decide (the verdict is the media's).
    /// </summary>
    internal BadRun? ReadRunChecked(VolumeState vol, Extent e, Span<byte> dest, List<BadRun>? all, bool cached = false)
    {
        byte[] meta;
        try { meta = GetEntryMeta(vol, e, cached); }
        catch (DataCorruptionException ex)
        {
            // No checksums to check the blocks against: none of them can be served.
            var whole = new BadRun(0, e.Count, ex.Detail);
            all?.Add(whole);
            return whole;
        }
        int stored = BinaryPrimitives.ReadUInt16LittleEndian(meta.AsSpan(EntryHeader.OffStoredCount));
        var dataStart = e.EntryBlock + 1 + EntryHeader.TableSectorsFor(stored);
        var buffer = _readPool.Rent((int)Math.Min(e.Count, ReadChunk / BlockSize) * BlockSize + 2 * Page);
        BadRun? first = null;
        var badFrom = -1;
        void EndBad(int at)
        {
            if (badFrom < 0) return;
            var run = new BadRun(badFrom, at - badFrom, Damage.BadBlocksReason(e.LogBlock + badFrom, at - badFrom, e.EntryBlock, meta));
            first ??= run;
            all?.Add(run);
            badFrom = -1;
        }
        try
        {
            for (var done = 0; done < e.Count;)
            {
                var n = Math.Min(e.Count - done, ReadChunk / BlockSize);
                var byteOff = (e.LogBlock + done) * BlockSize;
                var pages = PageSpan.Around(byteOff, n * BlockSize);
                var lead = pages.Lead;
                var span = buffer.Span[..pages.Length];
                var fromCache = false;
                if (cached)
                {
                    // A small run reads around it: the rest of its entry's stored blocks in the same 64 KiB window
                    // land in the page cache too (blocks one write stored together tend to be read together).
                    var (from, len) = ReadAroundWindow(byteOff, n * BlockSize, dataStart * BlockSize, (dataStart + stored) * BlockSize, buffer.Length);
                    var at = (int)(byteOff - from);
                    _device.ReadCached(buffer.Span[..len], from, wait: true);
                    fromCache = FirstUnverified(meta, new Extent(e.Start + done, n, e.LogBlock + done, e.EntryBlock), buffer.Span.Slice(at, n * BlockSize)) < 0;
                    if (fromCache) { span = buffer.Span[..len]; lead = at; }
                    else _device.Uncache(from, len);
                }
                if (!fromCache) _device.Read(span, pages.Offset);
                for (var i = 0; i < n; i++)
                {
                    var block = span.Slice(lead + i * BlockSize, BlockSize);
                    var k = (int)(e.LogBlock + done + i - dataStart);
                    if (k < 0 || k >= stored || Crc32C.Compute(block) != EntryCodec.GetBlockCrc(meta, k))
                    {
                        if (badFrom < 0) badFrom = done + i;
                        continue;
                    }
                    EndBad(done + i);
                    if (first is not null && all is null) return first;
                    block.CopyTo(dest.Slice((done + i) * BlockSize, BlockSize));
                }
                done += n;
            }
            EndBad(e.Count);
            return first;
        }
        finally { _readPool.Return(buffer); }
    }

    /// <summary>How much a small read through the page cache reads around itself, within its entry's stored blocks.</summary>
    private const int ReadAround = 64 << 10;

    /// <summary>
    /// The byte range a cached read of [offset, offset+length) reads: the <see cref="ReadAround"/>-aligned window it
    /// starts in, cut to its entry's stored data [dataStart, dataEnd) and to <paramref name="capacity"/>; never less than the run.
    /// </summary>
    private static (long From, int Length) ReadAroundWindow(long offset, int length, long dataStart, long dataEnd, int capacity)
    {
        if (length >= ReadAround || offset < dataStart || offset + length > dataEnd || dataEnd - dataStart <= length) return (offset, length);
        var from = Math.Max(dataStart, offset & ~(long)(ReadAround - 1));
        var end = Math.Min(dataEnd, Math.Max(from + ReadAround, offset + length));
        if (end - from > capacity) { from = offset; end = Math.Min(dataEnd, offset + ReadAround); }
        return (from, (int)(end - from));
    }

    internal byte[] GetEntryMeta(VolumeState vol, Extent e, bool cachedRead = false)
    {
        if (_metaCache.Get(e.EntryBlock) is { } cached) return cached;
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        try { ReadEntryMeta(e.EntryBlock, meta, vol.BaseId, cachedRead); }
        catch (CloudFsException ex) when (ex is not DataCorruptionException)
        {
            throw new DataCorruptionException(vol.BaseId, e.Start * BlockSize, (long)e.Count * BlockSize, ex.Message);
        }
        int stored = BinaryPrimitives.ReadUInt16LittleEndian(meta.AsSpan(EntryHeader.OffStoredCount));
        var exact = meta.AsSpan(0, EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(stored))).ToArray();
        _metaCache.Put(e.EntryBlock, exact);
        return exact;
    }

    /// <summary>
    /// Reads and checks (parse + header CRC) the header and CRC-table sectors of the entry at <paramref name="entryBlock"/>;
    /// with <paramref name="cachedRead"/> through the page cache first, and from the device when that copy fails.
    /// </summary>
    private EntryHeader ReadEntryMeta(long entryBlock, byte[] meta, Id160 volume, bool cachedRead = false)
    {
        var maxMeta = EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks));
        var buffer = _readPool.Rent(maxMeta + 2 * Page);
        try
        {
            var byteOff = entryBlock * BlockSize;
            if (cachedRead)
            {
                // The header sector first: it says how many table sectors follow (a small entry's are few).
                var c = buffer.Span;
                _device.ReadCached(c[..EntryHeader.Size], byteOff, wait: true);
                if (EntryHeader.TryParse(c, out var ch, out _) && ch.MetaSectors * EntryHeader.Size <= maxMeta
                    && byteOff + ch.MetaSectors * EntryHeader.Size <= _device.Size)
                {
                    var len = EntryHeader.Size * ch.MetaSectors;
                    if (len > EntryHeader.Size) _device.ReadCached(c[EntryHeader.Size..len], byteOff + EntryHeader.Size, wait: true);
                    if (EntryCodec.HeaderCrcMatches(c[..len]))
                    {
                        c[..len].CopyTo(meta);
                        return ch;
                    }
                }
                _device.Uncache(byteOff, maxMeta);
            }
            var pages = PageSpan.Around(byteOff, maxMeta);
            var total = (int)Math.Min(pages.Length, _device.Size - pages.Offset);
            _device.Read(buffer.Span[..total], pages.Offset);
            var s = buffer.Span[pages.Lead..total];
            var parsed = EntryHeader.TryParse(s, out var h, out var err);
            if (!parsed || !EntryCodec.HeaderCrcMatches(s[..(EntryHeader.Size * h.MetaSectors)]))
            {
                // One flipped bit is corrected here as recovery does, for the headers no roll-forward walks again (the
                // ones a checkpoint covers): nothing the header stands for is lost to it. In memory: the sector on disk
                // stays as it is (a rewrite would race the writer's pages), so each read of it from the device corrects it.
                var bit = OneBitCorrection.TryCorrectEntryMeta(s, s.Length);
                if (bit < 0)
                    throw parsed
                        ? new DataCorruptionException(volume, h.FirstBlock * BlockSize, (long)h.BlockCount * BlockSize, $"the entry header at log block {entryBlock} fails its checksum")
                        : new DataCorruptionException(volume, 0, 0, $"the entry header at log block {entryBlock} is unreadable: {err}");
                EntryHeader.TryParse(s, out h, out _);
                ReportError($"the entry header at log block {entryBlock} has one flipped bit (bit {bit}) on the device; corrected where it is read");
            }
            var metaLen = EntryHeader.Size * h.MetaSectors;
            s[..metaLen].CopyTo(meta);
            return h;
        }
        finally { _readPool.Return(buffer); }
    }

    /// <summary>Tests: the device byte offset of the stored block at <paramref name="offset"/> of a volume (-1 for a hole or zeros).</summary>
    internal long DeviceOffsetOf(Id160 volume, long offset)
    {
        var vol = Volume(volume);
        var extents = new List<Extent>();
        lock (vol.IndexLock) vol.Index.Lookup(offset / BlockSize, 1, extents);
        return extents.Count == 1 && !extents[0].IsZero ? extents[0].LogBlock * BlockSize : -1;
    }

    /// <summary>Allocated ranges and holes over [offset, offset+length).</summary>
    public IReadOnlyList<MappedRange> Map(Id160 volume, long offset, long length)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        CheckRange(vol, offset, length);
        var extents = new List<Extent>();
        lock (vol.IndexLock) vol.Index.Lookup(offset / BlockSize, length / BlockSize, extents);
        var result = new List<MappedRange>();
        void Add(long off, long len, bool alloc)
        {
            if (len <= 0) return;
            if (result.Count > 0 && result[^1] is var last && last.Allocated == alloc && last.Offset + last.Length == off)
                result[^1] = last with { Length = last.Length + len };
            else result.Add(new MappedRange(off, len, alloc));
        }
        var pos = offset;
        foreach (var e in extents)
        {
            Add(pos, e.Start * BlockSize - pos, false);
            Add(e.Start * BlockSize, (long)e.Count * BlockSize, !e.IsZero);
            pos = e.End * BlockSize;
        }
        Add(pos, offset + length - pos, false);
        return result;
    }

    /// <summary>Headers of the volume's entries with lsn in [fromLsn, toLsn], at most <paramref name="max"/>, oldest first; reads headers only.</summary>
    public IReadOnlyList<EntryHeaderInfo> ReadHeaders(Id160 volume, long fromLsn, long toLsn, long max)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        long head, oldest;
        LsnTable lsns;
        lock (vol.IndexLock) { head = vol.Lsn; oldest = vol.OldestStreamableLsn; lsns = vol.Lsns; }
        var result = new List<EntryHeaderInfo>();
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        for (var l = Math.Max(fromLsn, Math.Max(1, oldest)); l <= Math.Min(toLsn, head) && result.Count < max; l++)
        {
            long block;
            lock (vol.IndexLock) block = lsns.BlockOf(l);
            var h = ReadEntryMeta(block, meta, vol.BaseId);
            result.Add(InfoOf(h, meta));
        }
        return result;
    }

    private static EntryHeaderInfo InfoOf(EntryHeader h, ReadOnlySpan<byte> header) =>
        new(h.Volume, h.Lsn, h.Kind, h.Version, h.FirstBlock * BlockSize, h.CoveredBlocks(header) * BlockSize, h.TimestampUnixMs);

    /// <summary>Lsn of a version of a volume held here (the base id has lsn 1), or throws <see cref="UnknownVersionException"/>.</summary>
    public (Id160 Volume, long Lsn) FindVersion(Id160 version)
    {
        ThrowIfDisposed();
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        foreach (var vol in _volumes.Values)
        {
            if (!vol.Committed) continue;
            long lsn, block;
            lock (vol.IndexLock)
            {
                if (vol.Version == version) return (vol.BaseId, vol.Lsn);
                // A base a full resync installed has no header of its own at its lsn (the commit entry stands there).
                if (vol.History is { Lsn: > 0 } b && b.Version == version) return (vol.BaseId, b.Lsn);
                lsn = vol.Lsns.Find(version);
                if (lsn == 0) continue;
                block = vol.Lsns.BlockOf(lsn);
            }
            // The map is keyed by a prefix: confirm the full id from the header.
            try
            {
                if (ReadEntryMeta(block, meta, vol.BaseId).Version == version) return (vol.BaseId, lsn);
            }
            catch (DataCorruptionException) { }
        }
        throw new UnknownVersionException(version);
    }

    /// <summary>Reads the stored blocks of <paramref name="e"/> from the device as they are, unverified (their entry header,
    /// which held their checksums, is bad): for a replica's copy to confirm.</summary>
    internal void ReadStoredUnverified(Extent e, Span<byte> dest)
    {
        var buffer = _readPool.Rent((int)Math.Min(e.Count, ReadChunk / BlockSize) * BlockSize + 2 * Page);
        try
        {
            for (var done = 0; done < e.Count;)
            {
                var n = Math.Min(e.Count - done, ReadChunk / BlockSize);
                var pages = PageSpan.Around((e.LogBlock + done) * BlockSize, n * BlockSize);
                var span = buffer.Span[..pages.Length];
                _device.Read(span, pages.Offset);
                span.Slice(pages.Lead, n * BlockSize).CopyTo(dest.Slice(done * BlockSize, n * BlockSize));
                done += n;
            }
        }
        finally { _readPool.Return(buffer); }
    }
}
