// Per volume: lsn → log block of its entry header and version prefix, append-only (8+8 bytes per entry), so
// streams, ReadHeaders and FindVersion work without scanning the log; and the block range each entry changed (16 bytes
// per entry in memory, about 7 in the checkpoint's changes section), so a diff between versions reads no header for an
// entry whose change is known: appended or replayed since the store opened, or known to the checkpoint it opened from
// (entries a checkpoint without the section restored are unknown until a diff reads their headers once).
namespace CloudFs.BlockDevice.Volumes;

internal sealed class LsnTable
{
    // A new volume holds one entry (its creation) and most volumes of a host may sit idle: start small and double.
    private const int InitialCapacity = 2;
    // Elements below Count never change, so a checkpoint can capture (arrays, count) without copying.
    private long[] _blocks = new long[InitialCapacity];
    private ulong[] _prefixes = new ulong[InitialCapacity];
    // Elements below Count never change in place either (SetChanges and Truncate copy), so a checkpoint captures it too.
    private BlockChange[] _changes = NewChanges(InitialCapacity);
    private readonly Dictionary<ulong, long> _byPrefix = new();

    private static BlockChange[] NewChanges(long n)
    {
        var a = new BlockChange[n];
        Array.Fill(a, BlockChange.Unknown);
        return a;
    }

    public long Count { get; private set; }

    public void Add(long entryBlock, Id160 version) => Add(entryBlock, version, BlockChange.Unknown);

    /// <summary>Appends the next lsn: where its entry is, its version, and the blocks it changed.</summary>
    public void Add(long entryBlock, Id160 version, BlockChange change)
    {
        if (Count == _blocks.Length)
        {
            Array.Resize(ref _blocks, _blocks.Length * 2);
            Array.Resize(ref _prefixes, _prefixes.Length * 2);
        }
        if (Count >= _changes.Length)
        {
            var grown = NewChanges(_blocks.Length);
            Array.Copy(_changes, grown, _changes.Length);
            _changes = grown;
        }
        var p = VersionChain.Prefix(version);
        _blocks[Count] = entryBlock;
        _prefixes[Count] = p;
        _changes[Count] = change;
        Count++;
        _byPrefix.TryAdd(p, Count);
    }

    /// <summary>The blocks the entry of <paramref name="lsn"/> changed (<see cref="BlockChange.Unknown"/> until known).</summary>
    public BlockChange ChangeOf(long lsn) => _changes[lsn - 1];

    /// <summary>Records what header reads found the entries of these lsns changed (on a copy: a checkpoint may be
    /// serialising the captured array).</summary>
    public void SetChanges(IEnumerable<(long Lsn, BlockChange Change)> found)
    {
        var changes = (BlockChange[])_changes.Clone();
        foreach (var (lsn, change) in found) changes[lsn - 1] = change;
        _changes = changes;
    }

    /// <summary>The changes array for a checkpoint (its first <see cref="Count"/> elements; see <see cref="Capture"/>).</summary>
    public BlockChange[] CaptureChanges() => _changes;

    /// <summary>
    /// A volume installed by a full resync at <paramref name="lsn"/>: lsns 1..lsn-1 were never held here (they point at
    /// the resync commit too, below the oldest streamable lsn, and are not in the version map); lsn itself is the commit
    /// entry, which carries that lsn's version.
    /// </summary>
    public static LsnTable Seeded(long lsn, long commitBlock, Id160 version)
    {
        var t = new LsnTable();
        var n = Math.Max(InitialCapacity, lsn + 1);
        t._blocks = new long[n];
        t._prefixes = new ulong[n];
        t._changes = NewChanges(n);
        Array.Fill(t._blocks, commitBlock, 0, (int)lsn);
        t._prefixes[lsn - 1] = VersionChain.Prefix(version);
        t.Count = lsn;
        t._byPrefix[t._prefixes[lsn - 1]] = lsn;
        return t;
    }

    /// <summary>Approximate bytes of memory held: the two arrays and the version map (about 28 bytes an entry with its bucket).</summary>
    public long MemoryBytes => (_blocks.Length + (long)_prefixes.Length) * 8 + _changes.Length * 16L + _byPrefix.Count * 28L;

    /// <summary>Log block of the entry with <paramref name="lsn"/> (1-based).</summary>
    public long BlockOf(long lsn) => _blocks[lsn - 1];

    /// <summary>The version prefix kept for <paramref name="lsn"/> (1-based; zero for an lsn not held, see <see cref="Seeded"/>).</summary>
    public ulong PrefixOf(long lsn) => _prefixes[lsn - 1];

    /// <summary>The lsn whose entry header is at <paramref name="entryBlock"/> (the newest, should several name it), or 0.
    /// A scan: for the rare repair of an entry whose header went bad, which knows only where the header is.</summary>
    public long LsnAt(long entryBlock)
    {
        for (var i = Count - 1; i >= 0; i--)
            if (_blocks[i] == entryBlock) return i + 1;
        return 0;
    }

    /// <summary>The lsn whose version starts with the prefix of <paramref name="version"/> (caller verifies the full id), or 0.</summary>
    public long Find(Id160 version) => _byPrefix.GetValueOrDefault(VersionChain.Prefix(version));

    public (long[] Blocks, ulong[] Prefixes, long Count) Capture() => (_blocks, _prefixes, Count);

    public static LsnTable Restore(ReadOnlySpan<long> blocks, ReadOnlySpan<ulong> prefixes, ReadOnlySpan<BlockChange> changes = default)
    {
        var t = new LsnTable();
        var n = Math.Max(InitialCapacity, blocks.Length);
        t._blocks = new long[n];
        t._prefixes = new ulong[n];
        t._changes = NewChanges(n);
        blocks.CopyTo(t._blocks);
        prefixes.CopyTo(t._prefixes);
        if (changes.Length == blocks.Length) changes.CopyTo(t._changes);
        t.Count = blocks.Length;
        for (var i = 0; i < blocks.Length; i++) t._byPrefix.TryAdd(prefixes[i], i + 1);
        return t;
    }

    /// <summary>
    /// Forgets the entries after <paramref name="count"/> (a fork split rewinds the volume). The arrays are copied, not
    /// cut in place: a checkpoint may still be serialising the captured ones, whose elements must not change under it.
    /// </summary>
    public void Truncate(long count)
    {
        if (count < 0 || count > Count) throw new ArgumentOutOfRangeException(nameof(count));
        for (var i = count; i < Count; i++)
            if (_byPrefix.TryGetValue(_prefixes[i], out var at) && at == i + 1) _byPrefix.Remove(_prefixes[i]);
        var blocks = new long[_blocks.Length];
        var prefixes = new ulong[_prefixes.Length];
        var changes = NewChanges(_changes.Length);
        Array.Copy(_blocks, blocks, count);
        Array.Copy(_prefixes, prefixes, count);
        Array.Copy(_changes, changes, count);
        (_blocks, _prefixes, _changes, Count) = (blocks, prefixes, changes, count);
    }

    /// <summary>
    /// The entry of <paramref name="lsn"/> is now at <paramref name="newBlock"/> (a replica's copy took the place of one
    /// whose header went bad): streams and header reads follow it there. The array is copied, not changed in place: a
    /// checkpoint may still be serialising the captured one.
    /// </summary>
    public void Move(long lsn, long newBlock)
    {
        var blocks = (long[])_blocks.Clone();
        blocks[lsn - 1] = newBlock;
        _blocks = blocks;
    }
}
