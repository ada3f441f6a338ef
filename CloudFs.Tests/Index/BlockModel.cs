// The obviously-correct reference the extent index is checked against: one slot per logical block,
// with an optional parent model that holes fall through to (a branch).
namespace CloudFs.Tests.Index;

using CloudFs.BlockDevice.Index;

internal sealed class BlockModel
{
    /// <summary>What one block maps to; Log == -1 is an explicit zero, Present == false a hole.</summary>
    internal readonly record struct Slot(bool Present, long Log, long Entry);

    private readonly Slot[] _own;

    internal BlockModel(int blocks, BlockModel? parent)
    {
        _own = new Slot[blocks];
        Parent = parent;
    }

    internal BlockModel? Parent { get; }
    internal int Blocks => _own.Length;

    internal BlockModel Clone()
    {
        var m = new BlockModel(_own.Length, Parent);
        _own.CopyTo(m._own, 0);
        return m;
    }

    internal Slot Own(long b) => _own[b];

    internal Slot Resolve(long b) => _own[b].Present ? _own[b] : Parent?.Resolve(b) ?? default;

    internal void Insert(long start, int count, long log, long entry)
    {
        for (int k = 0; k < count; k++) _own[start + k] = new Slot(true, log == Extent.ZeroLogBlock ? log : log + k, entry);
    }

    internal void Remove(long start, long count)
    {
        for (long b = start; b < start + count && b < _own.Length; b++) _own[b] = default;
    }

    /// <summary>The model's Relocate: returns blocks that map (or already mapped) to the new place.</summary>
    internal long Relocate(long start, int count, long oldLog, long newLog, long newEntry)
    {
        long moved = 0;
        for (int k = 0; k < count && start + k < _own.Length; k++)
        {
            var s = _own[start + k];
            if (!s.Present) continue;
            if (s.Log == oldLog + k) { _own[start + k] = new Slot(true, newLog + k, newEntry); moved++; }
            else if (s.Log == newLog + k && s.Entry == newEntry) moved++;
        }
        return moved;
    }

    internal int OwnExtentBlocks()
    {
        int n = 0;
        foreach (var s in _own) if (s.Present) n++;
        return n;
    }
}
