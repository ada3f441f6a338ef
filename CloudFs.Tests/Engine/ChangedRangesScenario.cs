// Drives a store with random writes, zero-writes and trims, versions captured in between, branches from captured
// versions, compaction and reopens, against a model: a tree of the operations (each op's parent is the op before it on
// its volume; a branch continues from the captured version's op). The ranges changed between two versions are the
// union of the ops on the tree path between them, which LogStore.ChangedBetweenAsync must report exactly (merged),
// or refuse naming the version when compaction took the history.
using CloudFs.BlockDevice;
using FsCheck;
using FsCheck.Fluent;

namespace CloudFs.Tests.Engine;

internal abstract record CbtOp;
internal sealed record CbtWrite(int Block, int Blocks, int Seed) : CbtOp;
internal sealed record CbtZero(int Block, int Blocks) : CbtOp;
internal sealed record CbtCapture : CbtOp;
internal sealed record CbtBranch(int Capture) : CbtOp;
internal sealed record CbtCompact : CbtOp;
internal sealed record CbtReopen : CbtOp;

internal sealed class ChangedRangesScenario(Func<LogStoreOptions> options, int volumeBlocks)
{
    private const int B = LogStore.BlockSize;

    public static Gen<CbtOp[]> Ops(int volumeBlocks, int maxBlocks, int maxOps)
    {
        Gen<CbtOp> write = from blocks in Gen.Choose(1, maxBlocks)
                           from block in Gen.Choose(0, volumeBlocks - blocks)
                           from seed in Gen.Choose(0, int.MaxValue)
                           select (CbtOp)new CbtWrite(block, blocks, seed);
        Gen<CbtOp> zero = from blocks in Gen.Choose(1, volumeBlocks / 4)
                          from block in Gen.Choose(0, volumeBlocks - blocks)
                          select (CbtOp)new CbtZero(block, blocks);
        Gen<CbtOp> branch = from k in Gen.Choose(0, 1000) select (CbtOp)new CbtBranch(k);
        var op = Gen.Frequency((20, write), (4, zero), (6, Gen.Constant<CbtOp>(new CbtCapture())), (2, branch),
            (2, Gen.Constant<CbtOp>(new CbtCompact())), (1, Gen.Constant<CbtOp>(new CbtReopen())));
        return Gen.Choose(5, maxOps).SelectMany(n => Gen.ArrayOf(op, n));
    }

    /// <summary>One node of the model's tree: what an op wrote (Count 0: nothing), under its parent.</summary>
    private readonly record struct Node(int Parent, int Depth, int Start, int Count);

    private readonly List<Node> _nodes = [new(-1, 0, 0, 0)];
    private readonly List<(Id160 Version, Id160 Volume, int Node)> _captures = new();
    private readonly Dictionary<Id160, Id160> _branchedFrom = new();
    private LogStore _store = null!;
    private Id160 _vol;
    private int _head;

    public async Task RunAsync(IEnumerable<CbtOp> ops)
    {
        _store = TempLog.OpenRetrying(options());
        try
        {
            _vol = (await _store.CreateVolumeAsync((long)volumeBlocks * B, VolumeMode.Async, [])).BaseId;
            _captures.Add((_vol, _vol, 0));
            foreach (var op in ops) await ApplyAsync(op);
            await CheckAllAsync();
        }
        finally { await _store.DisposeAsync(); }
    }

    private async Task ApplyAsync(CbtOp op)
    {
        switch (op)
        {
            case CbtWrite w:
                var data = new byte[w.Blocks * B];
                new Random(w.Seed).NextBytes(data);
                // A block of zeros in a data entry is not stored, but it was written: it counts as changed.
                if (w.Blocks > 1) data.AsSpan(0, B).Clear();
                await _store.WriteAsync(_vol, (long)w.Block * B, data);
                Add(w.Block, w.Blocks);
                break;
            case CbtZero z:
                await _store.WriteZeroesAsync(_vol, (long)z.Block * B, (long)z.Blocks * B);
                Add(z.Block, z.Blocks);
                break;
            case CbtCapture:
                _captures.Add((_store.GetVolume(_vol)!.CurrentVersion, _vol, _head));
                await CheckAllAsync();
                break;
            case CbtBranch b:
                var from = _captures[b.Capture % _captures.Count];
                Id160 branch;
                try { branch = (await _store.BranchAsync(from.Version)).BaseId; }
                catch (VersionCompactedException) { return; }
                _branchedFrom[branch] = from.Volume;
                _vol = branch;
                _head = from.Node;
                break;
            case CbtCompact:
                await _store.CompactAsync();
                break;
            case CbtReopen:
                await _store.DisposeAsync();
                _store = TempLog.OpenRetrying(options());
                break;
        }
    }

    private void Add(int start, int count)
    {
        _nodes.Add(new Node(_head, _nodes[_head].Depth + 1, start, count));
        _head = _nodes.Count - 1;
    }

    /// <summary>Every captured version of the current volume's history against its head and against each of its own
    /// captures; a version of another volume's history is refused.</summary>
    private async Task CheckAllAsync()
    {
        var history = new HashSet<Id160>();
        for (var v = _vol; history.Add(v) && _branchedFrom.TryGetValue(v, out var parent);) v = parent;
        var ours = _captures.Where(c => c.Volume == _vol).ToList();
        foreach (var from in _captures)
        {
            if (!history.Contains(from.Volume))
            {
                var e = await Assert.ThrowsAsync<InvalidRangeException>(() => _store.Streams.ChangedBetweenAsync(_vol, from.Version));
                Assert.Contains(from.Version.ToString(), e.Message);
                continue;
            }
            await CheckAsync(from, null, _head);
            foreach (var to in ours) await CheckAsync(from, to.Version, to.Node);
        }
    }

    private async Task CheckAsync((Id160 Version, Id160 Volume, int Node) from, Id160? to, int toNode)
    {
        ChangedRanges got;
        try { got = await _store.Streams.ChangedBetweenAsync(_vol, from.Version, to); }
        catch (VersionCompactedException e)
        {
            Assert.Contains(from.Version.ToString(), e.Message);
            Assert.NotNull(e.OldestAvailable);
            Assert.Contains(e.OldestAvailable!.Value.ToString(), e.Message);
            return;
        }
        var want = Expected(from.Node, toNode);
        Assert.True(want.SequenceEqual(got.Ranges),
            $"diff {from.Version}..{to?.ToString() ?? "head"}: want [{string.Join(", ", want)}], got [{string.Join(", ", got.Ranges)}]");
        Assert.Equal(want.Sum(r => r.Length), got.Bytes);
    }

    /// <summary>The union of the ranges on the tree path between two nodes, merged.</summary>
    private List<ChangedRange> Expected(int a, int b)
    {
        var changed = new bool[volumeBlocks];
        void Mark(int n) { for (var i = 0; i < _nodes[n].Count; i++) changed[_nodes[n].Start + i] = true; }
        while (a != b)
        {
            if (_nodes[a].Depth >= _nodes[b].Depth) { Mark(a); a = _nodes[a].Parent; }
            else { Mark(b); b = _nodes[b].Parent; }
        }
        var result = new List<ChangedRange>();
        for (var i = 0; i < volumeBlocks;)
        {
            if (!changed[i]) { i++; continue; }
            var j = i;
            while (j < volumeBlocks && changed[j]) j++;
            result.Add(new ChangedRange((long)i * B, (long)(j - i) * B));
            i = j;
        }
        return result;
    }
}
