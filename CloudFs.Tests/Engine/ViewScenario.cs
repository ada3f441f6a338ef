// Drives two hosts X and Y of one volume with random writes, replica-set changes, failovers (the other host catches
// up and takes over with a majority of shares, the old primary keeps writing a divergent suffix) and follows (the
// non-primary applies the primary's chain, splitting off a fork first), with crashes and clean restarts in between.
// A model keeps each host's chain with the view in force at every lsn: the live state, the state recovered after a
// crash and the state restored from a checkpoint must all equal it (view number, view id, replica set, head).
using CloudFs.BlockDevice;
using FsCheck;
using FsCheck.Fluent;

namespace CloudFs.Tests.Engine;

internal abstract record ViewOp;
internal sealed record WriteOnOp(int Side, int Seed) : ViewOp;
/// <summary>A host that can write changes its replica set (itself first, the other host, maybe an outsider).</summary>
internal sealed record ChangeViewOp(int Side, bool Outsider) : ViewOp;
internal sealed record FailOverOp(bool Outsider) : ViewOp;
internal sealed record FollowOp : ViewOp;
internal sealed record RestartOp(int Side, bool Crash) : ViewOp;

internal sealed class ViewScenario : IAsyncDisposable
{
    private const int VolumeBytes = 256 << 10;

    public static Gen<ViewOp[]> Ops(int maxOps)
    {
        var side = Gen.Choose(0, 1);
        var op = Gen.Frequency(
            (8, from s in side from seed in Gen.Choose(0, int.MaxValue) select (ViewOp)new WriteOnOp(s, seed)),
            (3, from s in side from o in Gen.Elements(true, false) select (ViewOp)new ChangeViewOp(s, o)),
            (3, Gen.Elements(true, false).Select(o => (ViewOp)new FailOverOp(o))),
            (2, Gen.Constant<ViewOp>(new FollowOp())),
            (2, from s in side from c in Gen.Elements(true, false) select (ViewOp)new RestartOp(s, c)));
        return Gen.Choose(3, maxOps).SelectMany(n => Gen.ArrayOf(op, n));
    }

    /// <summary>One entry of a host's chain in the model: its version and the view in force once it is applied.</summary>
    private sealed record ModelEntry(Id160 Version, long ViewNumber, Id160 View, Id160[] Replicas);

    private readonly TempLog[] _logs = [new(), new()];
    private readonly LogStore[] _stores = new LogStore[2];
    private readonly List<ModelEntry>[] _chains = [[], []];
    private readonly Id160 _outsider = Id160.Random();
    private Id160 _volume;
    private int _primary;
    private readonly List<string> _trail = [];

    public async Task RunAsync(IEnumerable<ViewOp> ops)
    {
        for (var i = 0; i < 2; i++) _stores[i] = _logs[i].Open();
        var info = await _stores[0].CreateVolumeAsync(VolumeBytes, VolumeMode.Async, [_stores[0].HostId, _stores[1].HostId]);
        _volume = info.BaseId;
        _chains[0].Add(new ModelEntry(_volume, 0, _volume, [.. info.Replicas]));
        await FollowAsync();
        foreach (var op in ops)
        {
            _trail.Add(op.ToString());
            await ApplyAsync(op);
            Check(0, "after " + op);
            Check(1, "after " + op);
        }
        // Both hosts, once more: a crash, then clean restarts (the second one loads the checkpoint the first wrote).
        for (var i = 0; i < 2; i++)
        {
            await RestartAsync(i, crash: true);
            await RestartAsync(i, crash: false);
            await RestartAsync(i, crash: false);
            Assert.True(_stores[i].LastRecovery.FromCheckpoint);
        }
    }

    private async Task ApplyAsync(ViewOp op)
    {
        switch (op)
        {
            case WriteOnOp w when _stores[w.Side].IsWritable(_volume):
            {
                var rnd = new Random(w.Seed);
                var blocks = rnd.Next(1, 9);
                var offset = (long)rnd.Next(0, VolumeBytes / LogStore.BlockSize - blocks) * LogStore.BlockSize;
                var r = await _stores[w.Side].WriteAsync(_volume, offset, TempLog.Pattern(blocks * LogStore.BlockSize, w.Seed));
                var last = _chains[w.Side][^1];
                _chains[w.Side].Add(last with { Version = r.Version });
                break;
            }
            case ChangeViewOp c when _stores[c.Side].IsWritable(_volume):
            {
                var replicas = ReplicaSet(c.Side, c.Outsider);
                var info = await _stores[c.Side].Ownership.TakeOverAsync(_volume, [], replicas);
                _chains[c.Side].Add(new ModelEntry(info.CurrentVersion, _chains[c.Side][^1].ViewNumber + 1, info.CurrentVersion, replicas));
                break;
            }
            case FailOverOp f:
            {
                // The other host catches up with the primary, holds a share of its view and takes over with the primary's.
                await FollowAsync();
                var (p, o) = (_stores[_primary], _stores[1 - _primary]);
                var shares = p.Ownership.SealShares(_volume, [ThreeHosts.Holder(o), ThreeHosts.Holder(p)]);
                o.Ownership.StoreShare(shares[0]);
                p.Ownership.StoreShare(shares[1]);
                var released = p.Ownership.ReleaseShare(_volume, ThreeHosts.Holder(o));
                var replicas = ReplicaSet(1 - _primary, f.Outsider);
                var info = await o.Ownership.TakeOverAsync(_volume, [released], replicas);
                var chain = _chains[1 - _primary];
                chain.Add(new ModelEntry(info.CurrentVersion, chain[^1].ViewNumber + 1, info.CurrentVersion, replicas));
                // The old primary is not told: it still holds its secret and may write a suffix the new one never has.
                _primary = 1 - _primary;
                break;
            }
            case FollowOp:
                await FollowAsync();
                break;
            case RestartOp r:
                await RestartAsync(r.Side, r.Crash);
                break;
        }
    }

    private Id160[] ReplicaSet(int side, bool outsider) =>
        outsider ? [_stores[side].HostId, _stores[1 - side].HostId, _outsider] : [_stores[side].HostId, _stores[1 - side].HostId];

    /// <summary>The non-primary applies the primary's chain; on a fork it keeps its suffix as a branch and rewinds first.</summary>
    private async Task FollowAsync()
    {
        var (s, t) = (1 - _primary, _primary);
        var r = await _stores[s].Streams.ApplyLiveAsync(await StreamAsync(_stores[t], 0), _ => { });
        if (r.IsFork)
        {
            var common = Math.Min(_stores[s].GetVolume(_volume)!.Lsn, _stores[t].GetVolume(_volume)!.Lsn);
            while (_stores[s].VersionAt(_volume, common) != _stores[t].VersionAt(_volume, common)) common--;
            await _stores[s].SplitForkAsync(_volume, common);
            // Rewound: the model's chain up to the common lsn, with the view in force there.
            _chains[s].RemoveRange((int)common, _chains[s].Count - (int)common);
            Check(s, $"right after the split at lsn {common}");
            r = await _stores[s].Streams.ApplyLiveAsync(await StreamAsync(_stores[t], common), _ => { });
        }
        Assert.True(r.Ok, $"{r.Error} ({string.Join(", ", _trail)})");
        _chains[s].Clear();
        _chains[s].AddRange(_chains[t]);
    }

    private async Task<MemoryStream> StreamAsync(LogStore from, long afterLsn)
    {
        var ms = new MemoryStream();
        await from.Streams.StreamAsync(_volume, afterLsn, ms, follow: false);
        ms.Position = 0;
        return ms;
    }

    /// <summary>Closes a host (as a crash leaves it, or cleanly with a checkpoint), opens it again: nothing of the view may change.</summary>
    private async Task RestartAsync(int side, bool crash)
    {
        await _stores[side].FlushAsync();
        var before = _stores[side].GetVolume(_volume)!;
        if (crash) _stores[side].CloseWithoutCheckpoint();
        else await _stores[side].DisposeAsync();
        _stores[side] = TempLog.OpenRetrying(_logs[side].Options());
        var after = _stores[side].GetVolume(_volume)!;
        var how = crash ? "a crash (replay)" : "a clean restart (checkpoint)";
        Assert.True(before.ViewNumber == after.ViewNumber && before.View == after.View && before.Replicas.SequenceEqual(after.Replicas)
                    && before.Lsn == after.Lsn && before.CurrentVersion == after.CurrentVersion && before.IsWritable == after.IsWritable,
            $"host {side} after {how}: view {after.ViewNumber} {after.View} [{string.Join(",", after.Replicas)}] lsn {after.Lsn} writable {after.IsWritable}, "
            + $"live it was view {before.ViewNumber} {before.View} [{string.Join(",", before.Replicas)}] lsn {before.Lsn} writable {before.IsWritable} ({string.Join(", ", _trail)})");
        Check(side, "after " + how);
    }

    private void Check(int side, string when)
    {
        var live = _stores[side].GetVolume(_volume)!;
        var m = _chains[side][^1];
        Assert.True(live.Lsn == _chains[side].Count && live.CurrentVersion == m.Version && live.ViewNumber == m.ViewNumber && live.View == m.View
                    && live.Replicas.SequenceEqual(m.Replicas),
            $"host {side} {when}: lsn {live.Lsn} view {live.ViewNumber} {live.View} [{string.Join(",", live.Replicas)}], the model says lsn "
            + $"{_chains[side].Count} view {m.ViewNumber} {m.View} [{string.Join(",", m.Replicas)}] ({string.Join(", ", _trail)})");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _stores)
            if (s is not null) await s.DisposeAsync();
        foreach (var l in _logs) l.Dispose();
    }
}
