// The volume actor's pure decision logic: splitting, durability, range checks, replay — without actors.
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Events;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class VolumeStateTests
{
    private static VolumeState State(VolumeMode mode = VolumeMode.Async, bool writable = true, long size = 64L << 20) =>
        VolumeState.FromHead(new VolumeInfo(Id160.Random(), size, mode, Id160.Random(), 1, null, [], writable));

    [Fact]
    public void A_write_larger_than_one_entry_is_split_into_entry_sized_events()
    {
        var data = new byte[VolumeState.MaxEventBytes * 2 + 4096];
        var decision = State().Decide(1 << 20, data, fua: false);
        Assert.Null(decision.Error);
        var events = decision.Events.Cast<DataWritten>().ToArray();
        Assert.Equal(3, events.Length);
        Assert.Equal([1L << 20, (1L << 20) + VolumeState.MaxEventBytes, (1L << 20) + 2L * VolumeState.MaxEventBytes], events.Select(e => e.Offset));
        Assert.Equal(data.Length, events.Sum(e => e.Length));
        Assert.All(events, e => Assert.False(e.Durable));
    }

    [Fact]
    public void A_store_with_small_segments_gets_smaller_events()
    {
        var events = (State() with { EventBytes = 64 << 10 }).Decide(0, new byte[200 << 10], false).Events.Cast<DataWritten>().ToArray();
        Assert.Equal([64L << 10, 64L << 10, 64L << 10, 8L << 10], events.Select(e => e.Length));
    }

    [Fact]
    public void Fua_makes_only_the_last_event_of_a_write_durable()
    {
        var events = State().Decide(0, new byte[VolumeState.MaxEventBytes + 512], fua: true).Events.Cast<DataWritten>().ToArray();
        Assert.Equal([false, true], events.Select(e => e.Durable));
    }

    [Fact]
    public void A_sync_volumes_write_is_durable_only_when_the_client_asks()
    {
        // Sync mode waits for a majority of the replica set holding the write (VolumeActor), not for a flush each time.
        var state = State(VolumeMode.Sync);
        Assert.False(((DataWritten)Assert.Single(state.Decide(0, new byte[512], false).Events)).Durable);
        Assert.False(((ZeroesWritten)Assert.Single(state.DecideZeroes(0, 1 << 20, false).Events)).Durable);
        Assert.True(((DataWritten)Assert.Single(state.Decide(0, new byte[512], true).Events)).Durable);
        Assert.True(((ZeroesWritten)Assert.Single(state.DecideZeroes(0, 1 << 20, true).Events)).Durable);
    }

    [Theory]
    [InlineData(100, 512)]
    [InlineData(0, 100)]
    [InlineData(-512, 512)]
    [InlineData(64L << 20, 512)]
    [InlineData((64L << 20) - 512, 1024)]
    public void Misaligned_or_out_of_range_writes_are_refused(long offset, int length)
    {
        var decision = State().Decide(offset, new byte[length], false);
        Assert.IsType<InvalidRangeException>(decision.Error);
        Assert.Empty(decision.Events);
        Assert.IsType<InvalidRangeException>(State().DecideZeroes(offset, length, false).Error);
        Assert.IsType<InvalidRangeException>(State().CheckRead(offset, length));
    }

    [Fact]
    public void A_write_ending_exactly_at_the_end_is_accepted()
    {
        Assert.Null(State(size: 1 << 20).Decide((1 << 20) - 4096, new byte[4096], false).Error);
        Assert.Null(State(size: 1 << 20).CheckRead(0, 1 << 20));
    }

    [Fact]
    public void A_volume_without_its_secret_refuses_writes_but_serves_reads()
    {
        var state = State(writable: false);
        Assert.IsType<NotPrimaryException>(state.Decide(0, new byte[512], false).Error);
        Assert.IsType<NotPrimaryException>(state.DecideZeroes(0, 512, false).Error);
        Assert.Null(state.CheckRead(0, 512));
    }

    [Fact]
    public void An_unknown_volume_refuses_everything()
    {
        var state = VolumeState.Unknown(Id160.Random());
        Assert.IsType<VolumeNotFoundException>(state.Decide(0, new byte[512], false).Error);
        Assert.IsType<VolumeNotFoundException>(state.CheckRead(0, 512));
    }

    [Fact]
    public void Zero_length_commands_produce_no_events()
    {
        Assert.Empty(State().Decide(0, ReadOnlyMemory<byte>.Empty, true).Events);
        Assert.Empty(State().DecideZeroes(4096, 0, true).Events);
    }

    [Fact]
    public void Stored_and_replayed_events_move_the_lsn_and_version()
    {
        var state = State();
        var after = state.Apply(new DataWritten(0, new byte[512], false), 2);
        Assert.Equal(2, after.Lsn);
        var version = Id160.Random();
        var replayed = after.Apply(new EntryReplayed(new EntryHeaderInfo(state.VolumeId, 3, EntryKind.Zero, version, 0, 512, 0)), 3);
        Assert.Equal((3L, version), (replayed.Lsn, replayed.Version));
        Assert.Equal(1, state.Lsn); // immutable
    }
}
