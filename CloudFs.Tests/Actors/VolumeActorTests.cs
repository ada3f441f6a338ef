// The VolumeActor over the real journal, snapshot store and LogStore: writes, reads, flush, pipelining,
// refusals, and recovery from the head without reading data.
using Akka.Actor;
using Akka.Persistence;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Events;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class VolumeActorTests : StoreTestKit
{
    public VolumeActorTests() : base("volume-actor-tests") { }

    private async Task<(Id160 Volume, IActorRef Actor)> StartAsync(VolumeMode mode = VolumeMode.Async)
    {
        var info = await CreateVolumeAsync(mode: mode);
        return (info.BaseId, Sys.ActorOf(VolumeActor.Props(info.BaseId)));
    }

    private byte[] ReadBack(IActorRef actor, Id160 volume, long offset, int length)
    {
        actor.Tell(new Read(volume, offset, length));
        return ExpectMsg<ReadResult>().Data.ToArray();
    }

    [Fact]
    public async Task After_its_own_resize_the_writer_goes_on_in_place_and_still_knows_the_requests_it_took()
    {
        var (volume, actor) = await StartAsync();
        actor.Tell(new Write(volume, 0, Pattern(4096, 1), Fua: false) { RequestId = 42 });
        Assert.Equal(2, ExpectMsg<VolumeAck>().Lsn);
        actor.Tell(new ChangeLifecycle(volume, LifecycleChange.Resize, 32 << 20));
        Assert.Equal(3, ExpectMsg<VolumeAck>().Lsn);

        // The gateway's repeat of a write taken before the change is still known (the actor did not restart and
        // forget it): it is not applied again, and its answer went to the first attempt.
        actor.Tell(new Write(volume, 0, Pattern(4096, 2), Fua: false) { RequestId = 42 });
        Assert.Equal(Pattern(4096, 1), ReadBack(actor, volume, 0, 4096));
        // The grown range takes writes at once, at the next lsn.
        actor.Tell(new Write(volume, 20 << 20, Pattern(4096, 3), Fua: false));
        Assert.Equal(4, ExpectMsg<VolumeAck>().Lsn);
        Assert.Equal(Pattern(4096, 3), ReadBack(actor, volume, 20 << 20, 4096));
        Assert.Equal(32 << 20, Store.GetVolume(volume)!.SizeBytes);

        // A second change goes the same way, and nothing of the first is left over to be handled again.
        var unhandled = CreateTestProbe();
        Sys.EventStream.Subscribe(unhandled.Ref, typeof(Akka.Event.UnhandledMessage));
        actor.Tell(new ChangeLifecycle(volume, LifecycleChange.Resize, 48 << 20));
        Assert.Equal(5, ExpectMsg<VolumeAck>().Lsn);
        Assert.Equal(Pattern(4096, 3), ReadBack(actor, volume, 20 << 20, 4096));
        Assert.False(unhandled.HasMessages, "a message of the first change was handled again after the second");
        Assert.Equal(48 << 20, Store.GetVolume(volume)!.SizeBytes);
    }

    [Fact]
    public async Task A_write_is_acknowledged_with_its_lsn_and_reads_back()
    {
        var (volume, actor) = await StartAsync();
        var data = Pattern(8192, 1);
        actor.Tell(new Write(volume, 4096, data, Fua: false));
        Assert.Equal(2, ExpectMsg<VolumeAck>().Lsn);
        Assert.Equal(data, ReadBack(actor, volume, 4096, 8192));
        Assert.Equal(new byte[4096], ReadBack(actor, volume, 0, 4096)); // a hole reads as zeros
        Assert.Equal(2, Store.GetVolume(volume)!.Lsn);
    }

    /// <summary>Named as sharding names a shard's actor (HostShard); starts the volume's actor as its child and passes it
    /// everything.</summary>
    private sealed class Shard : ReceiveActor
    {
        public Shard(Id160 volume)
        {
            var entity = Context.ActorOf(VolumeActor.Props(volume), volume.ToString());
            ReceiveAny(m => entity.Forward(m));
        }
    }

    [Fact]
    public async Task An_actor_in_another_hosts_shard_answers_not_the_primary_and_leaves_the_chain_to_the_writer()
    {
        var (volume, home) = await StartAsync();
        home.Tell(new Write(volume, 0, Pattern(4096, 1), Fua: false));
        Assert.Equal(2, ExpectMsg<VolumeAck>().Lsn);
        // A route that named another host, and that host's shard placed here: its actor of the volume stands for that host.
        var elsewhere = Sys.ActorOf(Props.Create(() => new Shard(volume)), HostShard.Of(Id160.Random()));
        elsewhere.Tell(new Write(volume, 4096, Pattern(4096, 2), Fua: false));
        Assert.Equal(VolumeErrorKind.NotPrimary, ExpectMsg<VolumeFailure>().Kind);
        elsewhere.Tell(new Read(volume, 0, 4096));
        Assert.Equal(VolumeErrorKind.NotPrimary, ExpectMsg<VolumeFailure>().Kind);
        // The writer still holds the chain: its next write appends.
        home.Tell(new Write(volume, 8192, Pattern(4096, 3), Fua: false));
        Assert.Equal(3, ExpectMsg<VolumeAck>().Lsn);
        // This host's own shard is home.
        var own = Sys.ActorOf(Props.Create(() => new Shard(volume)), HostShard.Of(Store.HostId));
        own.Tell(new Read(volume, 8192, 4096));
        Assert.Equal(Pattern(4096, 3), ExpectMsg<ReadResult>().Data.ToArray());
    }

    [Fact]
    public async Task Pipelined_writes_each_take_one_lsn_are_all_acknowledged_and_read_back()
    {
        var (volume, actor) = await StartAsync();
        const int n = 64;
        for (var i = 0; i < n; i++) actor.Tell(new Write(volume, i * 4096L, Pattern(4096, i), false));
        // The log completes entries in order, but each completion answers from the thread pool: acknowledgements of
        // different writes may arrive in any order (NBD replies may too); every write gets its own lsn, once.
        var lsns = Enumerable.Range(0, n).Select(_ => ExpectMsg<VolumeAck>().Lsn).Order().ToArray();
        Assert.Equal(Enumerable.Range(2, n).Select(i => (long)i), lsns);
        Assert.Equal(n + 1, Store.GetVolume(volume)!.Lsn);
        for (var i = 0; i < n; i += 13) Assert.Equal(Pattern(4096, i), ReadBack(actor, volume, i * 4096L, 4096));
    }

    [Fact]
    public async Task A_large_write_becomes_several_entries_and_one_reply()
    {
        var (volume, actor) = await StartAsync();
        var eventBytes = Store.MaxBlocksPerEntry * LogStore.BlockSize;
        var data = Pattern(eventBytes * 2 + 512, 7);
        actor.Tell(new Write(volume, 0, data, Fua: true));
        Assert.Equal(4, ExpectMsg<VolumeAck>().Lsn);
        ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(data, ReadBack(actor, volume, 0, data.Length));
    }

    [Fact]
    public async Task Zeroes_flush_and_map_work_through_the_actor()
    {
        var (volume, actor) = await StartAsync(VolumeMode.Sync);
        actor.Tell(new Write(volume, 0, Pattern(16384, 3), false));
        ExpectMsg<VolumeAck>();
        actor.Tell(new WriteZeroes(volume, 4096, 4096, false));
        Assert.Equal(3, ExpectMsg<VolumeAck>().Lsn);
        actor.Tell(new Flush(volume));
        Assert.Equal(3, ExpectMsg<VolumeAck>().Lsn);
        Assert.Equal(new byte[4096], ReadBack(actor, volume, 4096, 4096));
        Assert.Equal(Pattern(16384, 3).AsSpan(8192).ToArray(), ReadBack(actor, volume, 8192, 8192));
        actor.Tell(new Map(volume, 0, 32768));
        var ranges = ExpectMsg<MapResult>().Ranges;
        Assert.Equal(32768, ranges.Sum(r => r.Length));
        Assert.True(ranges.First(r => r.Offset == 0).Allocated);
        Assert.False(ranges.Single(r => r.Offset <= 20000 && 20000 < r.Offset + r.Length).Allocated);
    }

    [Fact]
    public async Task Bad_requests_are_answered_with_the_engine_error_and_change_nothing()
    {
        var (volume, actor) = await StartAsync();
        actor.Tell(new Write(volume, 100, new byte[512], false));
        Assert.Equal(VolumeErrorKind.InvalidRange, ExpectMsg<VolumeFailure>().Kind);
        actor.Tell(new Write(volume, 16 << 20, new byte[512], false));
        Assert.Equal(VolumeErrorKind.InvalidRange, ExpectMsg<VolumeFailure>().Kind);
        actor.Tell(new Read(volume, 0, 100));
        Assert.Equal(VolumeErrorKind.InvalidRange, ExpectMsg<VolumeFailure>().Kind);
        Assert.Equal(1, Store.GetVolume(volume)!.Lsn);
        // and the actor still works
        actor.Tell(new Write(volume, 0, new byte[512], false));
        Assert.Equal(2, ExpectMsg<VolumeAck>().Lsn);
    }

    [Fact]
    public void An_unknown_volume_answers_not_found()
    {
        var volume = Id160.Random();
        var actor = Sys.ActorOf(VolumeActor.Props(volume));
        actor.Tell(new Write(volume, 0, new byte[512], false));
        var failure = ExpectMsg<VolumeFailure>();
        Assert.Equal(VolumeErrorKind.VolumeNotFound, failure.Kind);
        Assert.IsType<VolumeNotFoundException>(failure.ToException());
    }

    [Fact]
    public async Task Restarted_actor_recovers_from_the_head_without_replaying_and_data_is_intact()
    {
        var (volume, actor) = await StartAsync();
        for (var i = 0; i < 10; i++) actor.Tell(new Write(volume, i * 512L, Pattern(512, i), false));
        for (var i = 0; i < 10; i++) ExpectMsg<VolumeAck>();
        Watch(actor);
        actor.Tell(PoisonPill.Instance);
        ExpectTerminated(actor);

        var again = Sys.ActorOf(VolumeActor.Props(volume));
        again.Tell(new GetVolumeStatus(volume));
        var status = ExpectMsg<VolumeStatus>();
        Assert.Equal(11, status.Lsn);
        Assert.True(status.RecoveredFromHead);
        Assert.Equal(0, status.ReplayedHeaders);
        for (var i = 0; i < 10; i++) Assert.Equal(Pattern(512, i), ReadBack(again, volume, i * 512L, 512));
        again.Tell(new Write(volume, 0, new byte[512], false));
        Assert.Equal(12, ExpectMsg<VolumeAck>().Lsn);
    }

    // A persistent actor of our own that persists an event the journal cannot store, then goes on.
    private sealed class Rejecting(Id160 volume, IActorRef probe) : UntypedPersistentActor
    {
        public override string PersistenceId { get; } = volume.ToString();

        // Replay from lsn 1 rather than from the head the snapshot store offers, to see every header.
        public override Recovery Recovery { get; } = new(SnapshotSelectionCriteria.None);

        protected override void OnRecover(object message)
        {
            if (message is EntryReplayed e) probe.Tell($"replayed {e.Header.Lsn} {e.Header.Kind}");
        }

        protected override void OnCommand(object message)
        {
            switch (message)
            {
                case IVolumeEvent or string:
                    Persist(message, e => probe.Tell($"stored {LastSequenceNr}"));
                    break;
            }
        }

        protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr) =>
            probe.Tell($"rejected {sequenceNr}");
    }

    [Fact]
    public async Task A_persistent_actor_gets_OnPersistRejected_for_an_unknown_event_and_continues()
    {
        var info = await CreateVolumeAsync();
        var actor = Sys.ActorOf(Props.Create(() => new Rejecting(info.BaseId, TestActor)));
        ExpectMsg("replayed 1 Create");
        actor.Tell(new DataWritten(0, Pattern(512, 1), false));
        ExpectMsg("stored 2");
        actor.Tell("an event no journal of ours stores");
        ExpectMsg("rejected 3");
        actor.Tell(new DataWritten(512, Pattern(512, 2), false));
        ExpectMsg("stored 4");
        Assert.Equal(3, Store.GetVolume(info.BaseId)!.Lsn);

        Watch(actor);
        actor.Tell(PoisonPill.Instance);
        ExpectTerminated(actor);
        Sys.ActorOf(Props.Create(() => new Rejecting(info.BaseId, TestActor)));
        ExpectMsg("replayed 1 Create");
        ExpectMsg("replayed 2 Data");
        ExpectMsg("replayed 3 Data");
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }
}
