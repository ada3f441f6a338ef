// FsCheck: random writes, zero-writes and flushes, a crash (the unflushed tail kept, torn or garbled), then one random
// bit flipped anywhere in the durable part of the log. Recovery must keep every flushed write except the one block the
// flip may have hit (which reads as EIO), lose nothing written after it, and never write over durable entries.
// Half the cases flip a bit anywhere (mostly stored data, as bytes go); the other half a bit of a record (an entry
// header, a durable mark, a segment header or end record) anywhere in the durable log, so headers are never left to luck.
using System.Buffers.Binary;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class CorruptionProperties
{
    private const int B = LogStore.BlockSize;
    private const int VolumeBlocks = 256;

    internal sealed record Case(ModelOp[] Ops, int Tear, int TearSeed, long Flip, bool InRecord);

    private static Gen<Case> Cases()
    {
        var op = Gen.Frequency((12, ModelScenario.Writes(VolumeBlocks, 64)), (2, ModelScenario.Zeroes(VolumeBlocks)), (3, Gen.Constant<ModelOp>(new FlushOp())));
        return from n in Gen.Choose(3, 40)
               from ops in Gen.ArrayOf(op, n)
               from tear in Gen.Choose(0, 2)
               from seed in Gen.Choose(0, int.MaxValue)
               from flip in Gen.Choose(0, int.MaxValue)
               from inRecord in Gen.Elements(false, true)
               select new Case([.. ops, new FlushOp(), .. ops.Take(3)], tear, seed, flip, inRecord);
    }

    [Property(MaxTest = 40)]
    public Property Flushed_writes_survive_one_flipped_bit_anywhere_in_the_durable_log() =>
        Prop.ForAll(Arb.From(Cases()), c => RunAsync(c).GetAwaiter().GetResult());

    private static async Task RunAsync(Case c)
    {
        using var t = new TempLog();
        // Small segments, so flips also land in segment headers, end records and durable marks.
        LogStoreOptions Options() => t.Options(size: 16 << 20, segment: 64 << 10);
        var store = TempLog.OpenRetrying(Options());
        var model = new byte[VolumeBlocks * B];
        var durable = (byte[])model.Clone();
        var unflushed = new List<ModelOp>();
        long durableLsn, flushEnd;
        Id160 v;
        try
        {
            v = (await store.CreateVolumeAsync(VolumeBlocks * B, VolumeMode.Async, [])).BaseId;
            flushEnd = await store.DurablePositionAsync();
            durableLsn = 1;
            foreach (var op in c.Ops)
            {
                switch (op)
                {
                    case WriteOp w:
                        await store.WriteAsync(v, (long)w.Block * B, ModelScenario.DataOf(w));
                        ModelScenario.ApplyTo(model, op);
                        unflushed.Add(op);
                        break;
                    case ZeroOp z:
                        await store.WriteZeroesAsync(v, (long)z.Block * B, (long)z.Blocks * B);
                        ModelScenario.ApplyTo(model, op);
                        unflushed.Add(op);
                        break;
                    case FlushOp:
                        await store.FlushAsync();
                        flushEnd = await store.DurablePositionAsync();
                        durable = (byte[])model.Clone();
                        durableLsn = store.GetVolume(v)!.Lsn;
                        unflushed.Clear();
                        break;
                }
            }
        }
        finally { store.CloseWithoutCheckpoint(); }

        var layout = store.Layout;
        // The crash: the unflushed tail stays (0), loses its end (1) or is garbled from a random sector on (2).
        if (c.Tear > 0)
        {
            var segEnd = layout.FirstSegmentOffset + ((flushEnd - layout.FirstSegmentOffset) / layout.SegmentSize + 1) * layout.SegmentSize;
            var at = flushEnd + c.TearSeed % Math.Max(1, (segEnd - flushEnd) / B) * B;
            var bytes = new byte[(int)Math.Min(segEnd - at, 4096)];
            if (c.Tear == 2) new Random(c.TearSeed).NextBytes(bytes);
            if (bytes.Length > 0) t.Poke(at, bytes);
        }
        // One bit anywhere in the durable log: the segments are used in order, so it is [first segment, flush end).
        var (flipAt, bitNo) = c.InRecord ? BitInARecord(t, layout.FirstSegmentOffset, flushEnd, c.Flip) : BitAnywhere(layout.FirstSegmentOffset, flushEnd, c.Flip);
        t.FlipBit(flipAt, bitNo);

        store = TempLog.OpenRetrying(Options());
        try
        {
            var lsn = store.GetVolume(v)!.Lsn;
            Assert.True(lsn >= durableLsn && lsn - durableLsn <= unflushed.Count, $"the head lsn {lsn} is not the flushed {durableLsn} plus some of {unflushed.Count} later writes");
            var expected = (byte[])durable.Clone();
            foreach (var op in unflushed.Take((int)(lsn - durableLsn))) ModelScenario.ApplyTo(expected, op);
            var bad = await CheckAsync(store, v, expected, _ => true, "after the flip");
            // New writes land after the durable entries: a crash and a reopen later, everything still reads.
            var fresh = TempLog.Pattern(4 * B, c.TearSeed);
            await store.WriteAsync(v, 0, fresh, durable: true);
            fresh.CopyTo(expected, 0);
            store.CloseWithoutCheckpoint();
            store = TempLog.OpenRetrying(Options());
            await CheckAsync(store, v, expected, i => i == bad && i >= 4, "after new writes and a second crash");
        }
        finally { await store.DisposeAsync(); }
    }

    private static (long Offset, int Bit) BitAnywhere(long from, long to, long pick)
    {
        var bit = pick % ((to - from) * 8);
        return (from + bit / 8, (int)(bit % 8));
    }

    /// <summary>A bit of one of the records (entry header, durable mark, segment header or end record) in [from, to).</summary>
    private static (long Offset, int Bit) BitInARecord(TempLog t, long from, long to, long pick)
    {
        var bytes = t.Peek(from, (int)(to - from));
        var records = new List<long>();
        for (var rel = 0; rel + B <= bytes.Length; rel += B)
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(rel)) is EntryHeader.Magic or DurableMark.Magic or SegmentRecord.HeaderMagic or SegmentRecord.EndMagic)
                records.Add(from + rel);
        Assert.NotEmpty(records);
        var bit = pick / records.Count % (B * 8);
        return (records[(int)(pick % records.Count)] + bit / 8, (int)(bit % 8));
    }

    /// <summary>Every block reads as expected except at most one that reads as EIO (the block the flip hit); returns it.</summary>
    private static async Task<int?> CheckAsync(LogStore store, Id160 v, byte[] expected, Func<int, bool> mayFail, string when)
    {
        int? failed = null;
        var back = new byte[B];
        for (var i = 0; i < VolumeBlocks; i++)
        {
            try { await store.ReadAsync(v, (long)i * B, back); }
            catch (DataCorruptionException) when (failed is null && mayFail(i)) { failed = i; continue; }
            Assert.True(back.AsSpan().SequenceEqual(expected.AsSpan(i * B, B)), $"{when}: block {i} differs from the flushed data");
        }
        return failed;
    }
}
