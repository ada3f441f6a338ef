// The volume actor as its chain's one owner (docs/WRITE-PATH.md): while it writes, a stream with a valid suffix of its
// chain (what POST /log and `cloudfs apply` hand the engine) is refused instead of stepping the host down under it, and
// a stale primary's actor steps down when asked (StepDown) once its writes in flight are in the log.
// The suffix comes from a "twin": this log and key file copied, opened beside it, written on.
using Akka.Actor;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class VolumeActorChainClaimTests : StoreTestKit
{
    public VolumeActorChainClaimTests() : base("volume-actor-chain-claim-tests") { }

    /// <summary>The volume as it is now, copied to a second store that can write it too (the same secret).</summary>
    private async Task<(LogStore Twin, string Dir)> TwinAsync()
    {
        await Store.FlushAsync();
        var dir = Directory.CreateTempSubdirectory("cloudfs-actors-twin-").FullName;
        // The open store holds its device locked against .NET's own opens: copied by cp, as a crash image would be.
        foreach (var (from, to) in new[] { (DevicePath, "log"), (DevicePath + ".keys", "log.keys") })
        {
            using var cp = System.Diagnostics.Process.Start("cp", [from, Path.Combine(dir, to)]);
            await cp.WaitForExitAsync();
            Assert.Equal(0, cp.ExitCode);
        }
        return (LogStore.Open(StoreOptions(dir)), dir);
    }

    private static async Task<MemoryStream> SuffixAsync(LogStore twin, Id160 volume, long afterLsn, int entries)
    {
        for (var i = 0; i < entries; i++) await twin.WriteAsync(volume, i * 4096L, Pattern(4096, 500 + i));
        var ms = new MemoryStream();
        await twin.Streams.StreamAsync(volume, afterLsn, ms, follow: false);
        ms.Position = 0;
        return ms;
    }

    private byte[] ReadBack(IActorRef actor, Id160 volume, long offset, int length)
    {
        actor.Tell(new Read(volume, offset, length));
        return ExpectMsg<ReadResult>().Data.ToArray();
    }

    [Fact]
    public async Task A_valid_suffix_applied_while_the_actor_writes_is_refused_and_every_acknowledged_write_reads_back()
    {
        var volume = (await CreateVolumeAsync()).BaseId;
        var actor = Sys.ActorOf(VolumeActor.Props(volume));
        actor.Tell(new Write(volume, 0, Pattern(4096, 1), false));
        Assert.Equal(2, ExpectMsg<VolumeAck>().Lsn);
        var (twin, twinDir) = await TwinAsync();
        try
        {
            var suffix = await SuffixAsync(twin, volume, 2, 4);
            var again = await SuffixAsync(twin, volume, 2, 0);

            // At the writer's head: it would chain on, but the chain is the actor's.
            var atHead = await Store.Streams.ApplyAsync(suffix, import: false);
            Assert.True(atHead.IsClaimed, atHead.Error);
            Assert.Equal(0, atHead.Applied);
            Assert.Equal(2, Store.GetVolume(volume)!.Lsn);

            // And while the actor writes: its writes go on, each acknowledged once with the next lsn.
            const int n = 64;
            for (var i = 0; i < n / 2; i++) actor.Tell(new Write(volume, i * 4096L, Pattern(4096, 1000 + i), false));
            var racing = Store.Streams.ApplyAsync(again, import: false);
            for (var i = n / 2; i < n; i++) actor.Tell(new Write(volume, i * 4096L, Pattern(4096, 1000 + i), false));
            var lsns = Enumerable.Range(0, n).Select(_ => ExpectMsg<VolumeAck>().Lsn).Order().ToArray();
            var raced = await racing;

            Assert.False(raced.Ok);
            Assert.True(raced.IsClaimed || raced.IsFork, raced.Error);
            Assert.Equal(Enumerable.Range(3, n).Select(i => (long)i), lsns);
            Assert.Equal(n + 2, Store.GetVolume(volume)!.Lsn);
            Assert.True(Store.IsWritable(volume));
            for (var i = 0; i < n; i++) Assert.Equal(Pattern(4096, 1000 + i), ReadBack(actor, volume, i * 4096L, 4096));
            actor.Tell(new GetVolumeStatus(volume));
            Assert.Equal(n + 2, ExpectMsg<VolumeStatus>().Lsn);
        }
        finally
        {
            await twin.DisposeAsync();
            Directory.Delete(twinDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_stale_primarys_actor_steps_down_when_asked_after_its_writes_in_flight()
    {
        var volume = (await CreateVolumeAsync()).BaseId;
        var actor = Sys.ActorOf(VolumeActor.Props(volume));
        // Writes in flight when the step-down arrives are in the log first, and acknowledged.
        for (var i = 0; i < 8; i++) actor.Tell(new Write(volume, i * 4096L, Pattern(4096, 10 + i), false));
        actor.Tell(new StepDown(volume));
        var acks = Enumerable.Range(0, 9).Select(_ => ExpectMsg<VolumeAck>().Lsn).Order().ToArray();
        Assert.Equal(9, acks[^1]);
        Assert.False(Store.IsWritable(volume));

        // The actor is a reader now: a write is refused, not written beside the other chain; what it wrote reads back.
        actor.Tell(new Write(volume, 0, Pattern(4096, 2), false));
        Assert.Equal(VolumeErrorKind.NotPrimary, ExpectMsg<VolumeFailure>().Kind);
        Assert.Equal(9, Store.GetVolume(volume)!.Lsn);
        for (var i = 0; i < 8; i++) Assert.Equal(Pattern(4096, 10 + i), ReadBack(actor, volume, i * 4096L, 4096));
    }

    [Fact]
    public async Task An_actor_whose_claim_went_to_a_successor_answers_not_the_primary_and_the_successor_writes()
    {
        var volume = (await CreateVolumeAsync()).BaseId;
        var first = Sys.ActorOf(VolumeActor.Props(volume));
        first.Tell(new Write(volume, 0, Pattern(4096, 1), false));
        Assert.Equal(2, ExpectMsg<VolumeAck>().Lsn);
        // A second actor of the volume (a shard moving back before the first one stopped) recovers as the writer.
        var second = Sys.ActorOf(VolumeActor.Props(volume));
        second.Tell(new GetVolumeStatus(volume));
        Assert.Equal(2, ExpectMsg<VolumeStatus>().Lsn);

        first.Tell(new Write(volume, 0, Pattern(4096, 2), false));
        Assert.Equal(VolumeErrorKind.NotPrimary, ExpectMsg<VolumeFailure>().Kind);
        second.Tell(new Write(volume, 4096, Pattern(4096, 3), false));
        Assert.Equal(3, ExpectMsg<VolumeAck>().Lsn);
        Assert.Equal(Pattern(4096, 1), ReadBack(second, volume, 0, 4096));
        Assert.Equal(Pattern(4096, 3), ReadBack(second, volume, 4096, 4096));
    }
}
