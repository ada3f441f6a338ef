// A bounded LRU cache of entries' header + CRC-table sectors, so a random read usually needs one I/O, not two.
namespace CloudFs.BlockDevice.Log;

internal sealed class EntryMetaCache(long capacityBytes)
{
    private readonly Dictionary<long, LinkedListNode<(long Block, byte[] Meta)>> _map = new();
    private readonly LinkedList<(long Block, byte[] Meta)> _lru = new();
    private readonly object _gate = new();
    private long _bytes;

    public byte[]? Get(long entryBlock)
    {
        lock (_gate)
        {
            if (!_map.TryGetValue(entryBlock, out var node)) return null;
            _lru.Remove(node);
            _lru.AddFirst(node);
            return node.Value.Meta;
        }
    }

    public void Put(long entryBlock, byte[] meta)
    {
        lock (_gate)
        {
            if (_map.Remove(entryBlock, out var old)) { _lru.Remove(old); _bytes -= old.Value.Meta.Length; }
            _map[entryBlock] = _lru.AddFirst((entryBlock, meta));
            _bytes += meta.Length;
            while (_bytes > capacityBytes && _lru.Last is { } last)
            {
                _lru.RemoveLast();
                _map.Remove(last.Value.Block);
                _bytes -= last.Value.Meta.Length;
            }
        }
    }

    /// <summary>Forgets every entry in [firstBlock, endBlock): a segment that is reused holds other entries there.</summary>
    public void Invalidate(long firstBlock, long endBlock)
    {
        lock (_gate)
        {
            foreach (var k in _map.Keys.Where(k => k >= firstBlock && k < endBlock).ToList())
            {
                _map.Remove(k, out var n);
                _lru.Remove(n!);
                _bytes -= n!.Value.Meta.Length;
            }
        }
    }
}
