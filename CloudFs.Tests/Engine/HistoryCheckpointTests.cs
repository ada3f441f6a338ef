// The checkpoint's history section keeps a history base with the chain's state at it (kind 4: what a full resync as of
// the base sends, and how long a resync-installed base is held), reads a base without it as before (kind 3), and
// refuses a state that cannot be (docs/FORMAT.md, "Checkpoints").
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Tests.Engine;

public sealed class HistoryCheckpointTests
{
    private static byte[] Encode(Id160 volume, HistoryBase history)
    {
        var index = new ExtentIndex();
        index.Insert(0, 8, 100, 99);
        var data = new CheckpointData(7, new WriterPosition(0, 5, 4096, 6), [SegmentState.Current], [5],
        [
            new VolumeCheckpoint(volume, 1 << 20, VolumeMode.Sync, [Id160.Random()], null, 5, Id160.Random(), Id160.Random(), Id160.Random(), 1,
                new long[5], new ulong[5], 5, index) { History = history },
        ]);
        return Checkpoint.Encode(data, Guid.NewGuid()).WrittenSpan[Checkpoint.HeaderSize..].ToArray();
    }

    private static HistoryBase Base()
    {
        var frozen = new ExtentIndex();
        frozen.Insert(0, 4, 200, 199);
        return new HistoryBase(3, Id160.Random(), frozen.Snapshot(), 512 << 10);
    }

    [Fact]
    public void A_history_base_keeps_the_chain_state_at_it_and_its_hold_and_one_without_a_state_reads_as_before()
    {
        var volume = Id160.Random();
        var chain = new BaseChainState(2, Id160.Random(), [Id160.Random(), Id160.Random()], 1234, Id160.Random(), Id160.Random());
        var withState = Base() with { Chain = chain, HeldUntilLsn = 5 };
        var read = Checkpoint.Decode(7, Encode(volume, withState), 1).Volumes.Single().History!;
        Assert.Equal((withState.Lsn, withState.Version, withState.SizeBytes, withState.HeldUntilLsn), (read.Lsn, read.Version, read.SizeBytes, read.HeldUntilLsn));
        Assert.Equal(withState.Index!.Enumerate(), read.Index!.Enumerate());
        Assert.NotNull(read.Chain);
        Assert.Equal((chain.ViewNumber, chain.View, chain.TrashedAtUnixMs, chain.HeadParent, chain.HeadDigest),
            (read.Chain.ViewNumber, read.Chain.View, read.Chain.TrashedAtUnixMs, read.Chain.HeadParent, read.Chain.HeadDigest));
        Assert.Equal(chain.Replicas, read.Chain.Replicas);

        var without = Base();
        var old = Checkpoint.Decode(7, Encode(volume, without), 1).Volumes.Single().History!;
        Assert.Null(old.Chain);
        Assert.Equal((without.Lsn, without.SizeBytes, 0L), (old.Lsn, old.SizeBytes, old.HeldUntilLsn));
    }

    [Fact]
    public void A_chain_state_whose_view_number_and_view_disagree_is_refused()
    {
        var volume = Id160.Random();
        // View 0 names the volume id; any other id with it cannot be.
        var bad = Base() with { Chain = new BaseChainState(0, Id160.Random(), [Id160.Random()], 0, Id160.Random(), Id160.Random()) };
        var e = Assert.Throws<FormatException>(() => Checkpoint.Decode(7, Encode(volume, bad), 1));
        Assert.Contains("bad base state", e.Message);
        var good = Base() with { Chain = new BaseChainState(0, volume, [Id160.Random()], 0, Id160.Random(), Id160.Random()) };
        Assert.Equal(volume, Checkpoint.Decode(7, Encode(volume, good), 1).Volumes.Single().History!.Chain!.View);
    }
}
