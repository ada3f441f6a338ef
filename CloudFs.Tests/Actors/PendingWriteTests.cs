// A write's entries complete on the thread pool in any order: the write is answered once all are stored, at the
// highest lsn of them (a sync volume's quorum waits for that one, not for whichever completed last).
using Akka.Actor;
using Akka.TestKit.Xunit2;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class PendingWriteTests : TestKit
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_write_whose_entries_complete_out_of_log_order_is_stored_at_its_highest_lsn(bool waitsForQuorum)
    {
        var actor = CreateTestProbe();
        var client = CreateTestProbe();
        var owner = new AppendsInFlight(Id160.Random(), actor.Ref) { WaitsForQuorum = waitsForQuorum };
        var write = new PendingWrite(client.Ref, entries: 3, fua: true, owner);
        var entries = Enumerable.Range(0, 3).Select(_ => new TaskCompletionSource<AppendResult>()).ToArray();
        foreach (var e in entries) write.Track(new ValueTask<AppendResult>(e.Task));

        // lsns 11, 12, 13 in log order; the engine's completions arrive 13, 11, 12 (each runs as its entry completes).
        entries[2].SetResult(new AppendResult(13, Id160.Random()));
        entries[0].SetResult(new AppendResult(11, Id160.Random()));
        entries[1].SetResult(new AppendResult(12, Id160.Random()));

        if (waitsForQuorum)
            Assert.Equal(13, actor.ExpectMsg<WriteStored>().Lsn);
        else
            Assert.Equal(13, client.ExpectMsg<VolumeAck>().Lsn);
    }
}
