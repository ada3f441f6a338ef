// A write's entries are told complete by the log (on its own thread or the pool) in any order: the write is answered
// once all are stored, at the highest lsn of them (a sync volume's quorum waits for that one, not for whichever
// completed last); an entry refused before the engine took it counts as told, and the write fails.
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
        IAppendCompletion told = write;
        for (var i = 0; i < 3; i++) write.Starting();

        // lsns 11, 12, 13 in log order; the engine's completions arrive 13, 11, 12 (each runs as its entry completes).
        told.Completed(new AppendResult(13, Id160.Random()));
        told.Completed(new AppendResult(11, Id160.Random()));
        Assert.False(client.HasMessages); // told synchronously: nothing yet
        told.Completed(new AppendResult(12, Id160.Random()));

        if (waitsForQuorum)
            Assert.Equal(13, actor.ExpectMsg<WriteStored>().Lsn);
        else
            Assert.Equal(13, client.ExpectMsg<VolumeAck>().Lsn);
        // Every entry ended: the actor may change its head now.
        Assert.True(owner.DrainedOrNotify());
    }

    [Fact]
    public void A_write_whose_second_entry_is_refused_before_the_engine_takes_it_fails_once_the_first_is_told()
    {
        var actor = CreateTestProbe();
        var client = CreateTestProbe();
        var owner = new AppendsInFlight(Id160.Random(), actor.Ref);
        var write = new PendingWrite(client.Ref, entries: 3, fua: false, owner);
        IAppendCompletion told = write;
        write.Starting();
        write.Starting();
        // The second entry is refused as it is handed over; the third is never handed over.
        write.Refused(new NotPrimaryException(Id160.Random()));
        write.NotStored(new NotPrimaryException(Id160.Random()));
        Assert.False(owner.DrainedOrNotify());
        Assert.False(client.HasMessages); // told synchronously: nothing yet

        told.Completed(new AppendResult(7, Id160.Random()));
        Assert.Contains("not the primary", client.ExpectMsg<VolumeFailure>().Message, StringComparison.OrdinalIgnoreCase);
        Assert.True(owner.DrainedOrNotify());
    }
}
