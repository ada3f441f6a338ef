// FsCheck properties: random Insert/Remove/Lookup/Snapshot/Branch/Relocate sequences agree with a per-block model,
// on tiny pages so splits, page drops and copy-on-write happen constantly.
namespace CloudFs.Tests.Index;

using System.Buffers;
using CloudFs.BlockDevice.Index;
using FsCheck.Xunit;

public sealed class ExtentIndexProperties
{
    [Property(Arbitrary = [typeof(IndexOpArbitrary)], MaxTest = 300)]
    public void Every_index_agrees_with_the_block_model_after_random_operations(IndexOp[] ops, byte capacitySeed)
    {
        var s = new IndexScenario(4 + capacitySeed % 4);
        for (int i = 0; i < ops.Length; i++)
        {
            s.Apply(ops[i]);
            if (i % 8 == 7) s.CheckEverything($"after op {i}");
        }
        s.CheckEverything("at the end");
    }

    [Property(Arbitrary = [typeof(IndexOpArbitrary)], MaxTest = 200)]
    public void Checkpoint_form_round_trips_exactly(IndexOp[] ops, byte[] trailer)
    {
        var s = new IndexScenario(4);
        foreach (var op in ops) s.Apply(op, allowSnapshots: false);
        var buffer = new ArrayBufferWriter<byte>();
        s.Live.WriteTo(buffer);
        int written = buffer.WrittenCount;
        buffer.Write(trailer);
        var back = ExtentIndex.ReadFrom(buffer.WrittenSpan, out int consumed);
        Assert.Equal(written, consumed);
        Assert.Equal(s.Live.Enumerate().ToList(), back.Enumerate().ToList());
        Assert.Equal(s.Live.Count, back.Count);
        IndexChecks.LookupMatches(back, s.LiveModel, 0, IndexScenario.Blocks, "read back");
        // The restored index is fully usable: an overwrite in it reads back like one in the model.
        back.Insert(5, 7, 99_999, 42);
        s.LiveModel.Insert(5, 7, 99_999, 42);
        IndexChecks.LookupMatches(back, s.LiveModel, 0, IndexScenario.Blocks, "written after read back");
    }

    [Property(Arbitrary = [typeof(IndexOpArbitrary)], MaxTest = 100)]
    public void Every_truncation_of_a_checkpoint_is_refused(IndexOp[] ops)
    {
        var s = new IndexScenario(4);
        foreach (var op in ops) s.Apply(op, allowSnapshots: false);
        var buffer = new ArrayBufferWriter<byte>();
        s.Live.WriteTo(buffer);
        var bytes = buffer.WrittenSpan.ToArray();
        for (int len = 0; len < bytes.Length; len++)
            Assert.Throws<InvalidDataException>(() => ExtentIndex.ReadFrom(bytes.AsSpan(0, len), out _));
    }

    [Property(Arbitrary = [typeof(IndexOpArbitrary)], MaxTest = 300)]
    public void Garbled_checkpoint_is_refused_or_reads_as_a_well_formed_index(IndexOp[] ops, int where, byte xor, byte[] garbage)
    {
        var s = new IndexScenario(4);
        foreach (var op in ops) s.Apply(op, allowSnapshots: false);
        var buffer = new ArrayBufferWriter<byte>();
        s.Live.WriteTo(buffer);
        var bytes = buffer.WrittenSpan.ToArray();
        bytes[(int)((uint)where % bytes.Length)] ^= (byte)(xor | 1);
        ReadsSafely(bytes);
        ReadsSafely(garbage);
        // A header with an honest magic but random body must not allocate a giant index or crash either.
        ReadsSafely([.. bytes.AsSpan(0, ExtentIndexFormatHeader), .. garbage]);
    }

    private const int ExtentIndexFormatHeader = 13;

    private static void ReadsSafely(byte[] bytes)
    {
        ExtentIndex index;
        try { index = ExtentIndex.ReadFrom(bytes, out int consumed); Assert.InRange(consumed, 13, bytes.Length); }
        catch (InvalidDataException) { return; }
        long prevEnd = 0, n = 0;
        foreach (var x in index.Enumerate())
        {
            Assert.True(x.Count > 0 && x.Start >= prevEnd && x.LogBlock >= Extent.ZeroLogBlock, $"accepted a malformed extent {x}");
            prevEnd = x.End;
            n++;
        }
        Assert.Equal(n, index.Count);
    }
}
