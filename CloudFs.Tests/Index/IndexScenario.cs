// Drives an ExtentIndex and a BlockModel side by side through a sequence of random operations, checking
// each step that can be checked.
namespace CloudFs.Tests.Index;

using CloudFs.BlockDevice.Index;

internal sealed class IndexScenario
{
    internal const int Blocks = 96;

    private readonly Dictionary<ExtentIndex, BlockModel> _models = new(ReferenceEqualityComparer.Instance);
    private readonly List<ExtentIndex> _snapshots = new();
    private long _nextLog = 1000, _nextEntry = 1;
    private long _lastEnd, _lastLogEnd, _lastEntry = -7;

    internal IndexScenario(int pageCapacity)
    {
        Live = new ExtentIndex(pageCapacity);
        _models[Live] = new BlockModel(Blocks, null);
    }

    internal ExtentIndex Live { get; private set; }
    internal BlockModel LiveModel => _models[Live];

    /// <summary>Every index alive in the scenario: the live one, the snapshots, and all branch parents.</summary>
    internal IEnumerable<(ExtentIndex Index, BlockModel Model)> All => _models.Select(kv => (kv.Key, kv.Value));

    internal void Apply(IndexOp op, bool allowSnapshots = true)
    {
        long start = op.Start;
        int count = (int)Math.Min(op.Count, Blocks - start);
        uint extra = (uint)op.Extra;
        switch (op.Kind)
        {
            case 0 or 1 or 2 or 3:
                InsertData(start, count, extra);
                break;
            case 4:
                Live.Insert(start, count, Extent.ZeroLogBlock, _nextEntry);
                LiveModel.Insert(start, count, Extent.ZeroLogBlock, _nextEntry++);
                break;
            case 5:
                Live.Remove(start, count);
                LiveModel.Remove(start, count);
                break;
            case 6 when allowSnapshots:
                if ((extra & 1) == 0) TakeSnapshot();
                else TakeBranch();
                break;
            case 7:
                Relocate(start, count, (int)(extra % 4), extra >> 2);
                break;
            default:
                IndexChecks.LookupMatches(Live, LiveModel, start, count, $"lookup after {op}");
                break;
        }
    }

    private void InsertData(long start, int count, uint extra)
    {
        long log, entry;
        if ((extra & 3) == 0 && _lastEnd < Blocks)
        {
            // Continue the previous write in both spaces with the same entry: the index may merge the two.
            start = _lastEnd;
            count = (int)Math.Min(count, Blocks - start);
            log = _lastLogEnd;
            entry = _lastEntry;
        }
        else
        {
            log = _nextLog;
            entry = _nextEntry++;
        }
        _nextLog = Math.Max(_nextLog, log + count) + 3;
        Live.Insert(start, count, log, entry);
        LiveModel.Insert(start, count, log, entry);
        (_lastEnd, _lastLogEnd, _lastEntry) = (start + count, log + count, entry);
    }

    private void TakeSnapshot()
    {
        var snap = Live.Snapshot();
        Assert.True(snap.IsFrozen);
        _models[snap] = LiveModel.Clone();
        _snapshots.Add(snap);
    }

    private void TakeBranch()
    {
        var parentModel = LiveModel.Clone();
        var child = Live.Branch();
        Assert.NotNull(child.Parent);
        _models[child.Parent!] = parentModel;
        _models[child] = new BlockModel(Blocks, parentModel);
        Live = child;
    }

    /// <summary>
    /// Compaction: the blocks under <paramref name="start"/> move, either in every index (as the engine does) or in one
    /// only, which must leave every other index, even one sharing pages, exactly as it was.
    /// </summary>
    private void Relocate(long start, int count, int back, uint which)
    {
        var at = LiveModel.Resolve(start);
        if (!at.Present || at.Log == Extent.ZeroLogBlock) return;
        long from = Math.Max(0, start - back);
        long oldLog = at.Log - (start - from);
        count = (int)Math.Min(count + back, Blocks - from);
        long newLog = _nextLog, newEntry = _nextEntry++;
        _nextLog += count + 3;
        var all = All.ToList();
        if ((start & 1) == 1) all.Reverse();
        if (which % 3 == 0) all = [all[(int)(which / 3 % (uint)all.Count)]];
        foreach (var (index, model) in all)
        {
            long expected = model.Relocate(from, count, oldLog, newLog, newEntry);
            long moved = index.Relocate(from, count, oldLog, newLog, newEntry);
            Assert.True(expected == moved, $"relocate [{from}, +{count}) {oldLog}->{newLog}: moved {moved}, model {expected}");
        }
    }

    internal void CheckEverything(string when)
    {
        foreach (var (index, model) in All)
        {
            IndexChecks.OwnExtentsMatch(index, model, when);
            IndexChecks.LookupMatches(index, model, 0, Blocks, when);
        }
    }
}
