// Drives a store with random operations against a byte-array model of one volume: writes (with zero blocks),
// zero-writes, reads, flushes, clean reopen, simulated crashes (log truncated or garbled after the last flush) and
// compaction. After a crash the volume must equal the flushed state plus some prefix of the unflushed writes.
using CloudFs.BlockDevice;
using FsCheck;
using FsCheck.Fluent;

namespace CloudFs.Tests.Engine;

internal abstract record ModelOp;
internal sealed record WriteOp(int Block, int Blocks, int Seed, int ZeroMask) : ModelOp;
internal sealed record ZeroOp(int Block, int Blocks) : ModelOp;
internal sealed record ReadOp(int Block, int Blocks) : ModelOp;
internal sealed record FlushOp : ModelOp;
internal sealed record ReopenOp : ModelOp;
internal sealed record CrashOp(bool Garble, int Where, int Seed) : ModelOp;
internal sealed record CompactOp : ModelOp;

internal sealed class ModelScenario(Func<LogStoreOptions> options, Action<long, byte[]> poke, int volumeBlocks)
{
    private const int B = LogStore.BlockSize;

    /// <summary>A write of 1..maxBlocks blocks of random data (some blocks all zero) anywhere in the volume.</summary>
    public static Gen<ModelOp> Writes(int volumeBlocks, int maxBlocks) =>
        from blocks in Gen.Choose(1, maxBlocks)
        from block in Gen.Choose(0, volumeBlocks - blocks)
        from seed in Gen.Choose(0, int.MaxValue)
        from mask in Gen.Choose(0, 7)
        select (ModelOp)new WriteOp(block, blocks, seed, mask);

    /// <summary>A zero-write of up to half the volume.</summary>
    public static Gen<ModelOp> Zeroes(int volumeBlocks) =>
        from blocks in Gen.Choose(1, volumeBlocks / 2)
        from block in Gen.Choose(0, volumeBlocks - blocks)
        select (ModelOp)new ZeroOp(block, blocks);

    public static Gen<ModelOp[]> Ops(int volumeBlocks, int maxBlocks, int maxOps)
    {
        var write = Writes(volumeBlocks, maxBlocks);
        var zero = Zeroes(volumeBlocks);
        Gen<ModelOp> read = from blocks in Gen.Choose(1, volumeBlocks / 2)
                            from block in Gen.Choose(0, volumeBlocks - blocks)
                            select (ModelOp)new ReadOp(block, blocks);
        Gen<ModelOp> crash = from garble in Gen.Elements(true, false)
                             from pos in Gen.Choose(0, int.MaxValue)
                             from seed in Gen.Choose(0, int.MaxValue)
                             select (ModelOp)new CrashOp(garble, pos, seed);
        var op = Gen.Frequency(
            (20, write), (3, zero), (5, read), (4, Gen.Constant<ModelOp>(new FlushOp())),
            (2, Gen.Constant<ModelOp>(new ReopenOp())), (3, crash), (2, Gen.Constant<ModelOp>(new CompactOp())));
        return Gen.Choose(5, maxOps).SelectMany(n => Gen.ArrayOf(op, n));
    }

    private LogStore _store = null!;
    private Id160 _vol;
    private byte[] _model = null!, _durable = null!;
    private readonly List<ModelOp> _unflushed = new();
    private long _durableLsn, _flushPos;

    public async Task RunAsync(IEnumerable<ModelOp> ops)
    {
        _store = TempLog.OpenRetrying(options());
        try
        {
            _vol = (await _store.CreateVolumeAsync((long)volumeBlocks * B, VolumeMode.Async, [])).BaseId;
            _model = new byte[volumeBlocks * B];
            await MarkDurable();
            foreach (var op in ops) await ApplyAsync(op);
            await CheckAll("at the end");
        }
        finally { await _store.DisposeAsync(); }
    }

    private async Task MarkDurable()
    {
        _flushPos = await _store.DurablePositionAsync();
        _durable = (byte[])_model.Clone();
        _durableLsn = _store.GetVolume(_vol)!.Lsn;
        _unflushed.Clear();
    }

    public static byte[] DataOf(WriteOp w)
    {
        var d = new byte[w.Blocks * B];
        new Random(w.Seed).NextBytes(d);
        // Some blocks all zero (not stored), so entries mix stored and zero runs.
        for (var i = 0; i < w.Blocks; i++)
            if (((i + w.Seed) & 7 & w.ZeroMask) == 1) d.AsSpan(i * B, B).Clear();
        return d;
    }

    /// <summary>What a write or zero-write does to the model's bytes.</summary>
    public static void ApplyTo(byte[] model, ModelOp op)
    {
        switch (op)
        {
            case WriteOp w: DataOf(w).CopyTo(model, w.Block * B); break;
            case ZeroOp z: model.AsSpan(z.Block * B, z.Blocks * B).Clear(); break;
        }
    }

    private async Task ApplyAsync(ModelOp op)
    {
        switch (op)
        {
            case WriteOp w:
                await _store.WriteAsync(_vol, (long)w.Block * B, DataOf(w));
                ApplyTo(_model, w);
                _unflushed.Add(w);
                break;
            case ZeroOp z:
                await _store.WriteZeroesAsync(_vol, (long)z.Block * B, (long)z.Blocks * B);
                ApplyTo(_model, z);
                _unflushed.Add(z);
                break;
            case ReadOp r:
                var back = new byte[r.Blocks * B];
                await _store.ReadAsync(_vol, (long)r.Block * B, back);
                Assert.True(back.AsSpan().SequenceEqual(_model.AsSpan(r.Block * B, r.Blocks * B)), $"read {r} differs from the model");
                break;
            case FlushOp:
                await _store.FlushAsync();
                await MarkDurable();
                break;
            case ReopenOp:
                await _store.DisposeAsync();
                _store = TempLog.OpenRetrying(options());
                await CheckAll("after reopen");
                await MarkDurable();
                break;
            case CompactOp:
                await _store.CompactAsync();
                await CheckAll("after compaction");
                await MarkDurable();
                break;
            case CrashOp c:
                await CrashAsync(c);
                break;
        }
    }

    private async Task CrashAsync(CrashOp c)
    {
        var layout = _store.Layout;
        _store.CloseWithoutCheckpoint();
        // Damage only what comes after the last flush, within the segment the flush ended in.
        var seg = (_flushPos - layout.FirstSegmentOffset) / layout.SegmentSize;
        var segEnd = layout.FirstSegmentOffset + (seg + 1) * layout.SegmentSize;
        var room = segEnd - _flushPos;
        var at = _flushPos + (c.Where % Math.Max(1, room / B)) * B;
        var len = (int)Math.Min(segEnd - at, c.Garble ? 4096 : segEnd - at);
        if (len > 0)
        {
            var bytes = new byte[len];
            if (c.Garble) new Random(c.Seed).NextBytes(bytes);
            poke(at, bytes);
        }
        _store = TempLog.OpenRetrying(options());
        var lsn = _store.GetVolume(_vol)!.Lsn;
        var survived = lsn - _durableLsn;
        Assert.True(survived >= 0 && survived <= _unflushed.Count, $"after the crash the head lsn is {lsn}, the flushed lsn was {_durableLsn} with {_unflushed.Count} later writes");
        var expected = (byte[])_durable.Clone();
        for (var i = 0; i < survived; i++) ApplyTo(expected, _unflushed[i]);
        _model = expected;
        await CheckAll($"after a crash ({(c.Garble ? "garbled" : "truncated")} at +{at - _flushPos}), {survived} of {_unflushed.Count} unflushed writes kept");
        await MarkDurable();
    }

    private async Task CheckAll(string when)
    {
        var back = new byte[_model.Length];
        await _store.ReadAsync(_vol, 0, back);
        for (var i = 0; i < volumeBlocks; i++)
            if (!back.AsSpan(i * B, B).SequenceEqual(_model.AsSpan(i * B, B)))
                Assert.Fail($"{when}: block {i} differs from the model");
    }
}
