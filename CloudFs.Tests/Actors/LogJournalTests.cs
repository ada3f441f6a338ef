// Akka's journal TCK cases that apply to CloudFS, ported over a real LogStore: replay bounds and max, deletes,
// a highest sequence number that never goes down, and rejection of events the journal cannot store.
using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using Akka.TestKit;
using CloudFs.Actors.Persistence;
using CloudFs.Actors.Volumes.Events;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class LogJournalTests : StoreTestKit
{
    private readonly IActorRef _journal;
    private readonly TestProbe _sender;

    public LogJournalTests() : base("log-journal-tests")
    {
        _journal = Persistence.Instance.Apply(Sys).JournalFor(null);
        _sender = CreateTestProbe();
    }

    /// <summary>A volume with entries lsn 1 (create) and 2..6 (data at block lsn-2), written through the journal.</summary>
    private async Task<string> VolumeWithFiveWritesAsync()
    {
        var info = await CreateVolumeAsync();
        var pid = info.BaseId.ToString();
        WriteAndExpect(pid, Enumerable.Range(2, 5).Select(lsn => (object)Data(lsn)).ToArray(), 2);
        return pid;
    }

    private static DataWritten Data(long lsn) => new((lsn - 2) * 512, Pattern(512, (int)lsn), false);

    private AtomicWrite Atomic(string pid, long seqNr, object payload) =>
        new(new Persistent(payload, seqNr, pid, "", false, ActorRefs.NoSender, "writer-1"));

    private void WriteAndExpect(string pid, object[] payloads, long firstSeqNr, params long[] rejected)
    {
        var writes = payloads.Select((p, i) => (IPersistentEnvelope)Atomic(pid, firstSeqNr + i, p)).ToArray();
        _journal.Tell(new WriteMessages(writes, _sender.Ref, 1));
        _sender.ExpectMsg<WriteMessagesSuccessful>();
        for (var i = 0; i < payloads.Length; i++)
        {
            var seqNr = firstSeqNr + i;
            if (rejected.Contains(seqNr)) Assert.Equal(seqNr, _sender.ExpectMsg<WriteMessageRejected>().Persistent.SequenceNr);
            else Assert.Equal(seqNr, _sender.ExpectMsg<WriteMessageSuccess>().Persistent.SequenceNr);
        }
    }

    private (List<EntryHeaderInfo> Headers, long Highest) Replay(string pid, long from, long to, long max)
    {
        _journal.Tell(new ReplayMessages(from, to, max, pid, _sender.Ref));
        var headers = new List<EntryHeaderInfo>();
        while (true)
        {
            var message = _sender.ExpectMsg<object>();
            switch (message)
            {
                case ReplayedMessage { Persistent: var p }:
                    var header = Assert.IsType<EntryReplayed>(p.Payload).Header;
                    Assert.Equal(p.SequenceNr, header.Lsn);
                    Assert.Equal(pid, p.PersistenceId);
                    headers.Add(header);
                    break;
                case RecoverySuccess s:
                    return (headers, s.HighestSequenceNr);
                default:
                    throw new Xunit.Sdk.XunitException($"unexpected {message}");
            }
        }
    }

    [Fact]
    public async Task Replay_yields_every_entry_header_in_order_and_the_highest_lsn()
    {
        var pid = await VolumeWithFiveWritesAsync();
        var (headers, highest) = Replay(pid, 1, long.MaxValue, long.MaxValue);
        Assert.Equal([1L, 2, 3, 4, 5, 6], headers.Select(h => h.Lsn));
        Assert.Equal(EntryKind.Create, headers[0].Kind);
        Assert.All(headers.Skip(1), h => Assert.Equal(EntryKind.Data, h.Kind));
        Assert.Equal([0L, 512, 1024, 1536, 2048], headers.Skip(1).Select(h => h.Offset));
        Assert.Equal(6, highest);
        Assert.Equal(Store.GetVolume(Id160.Parse(pid))!.CurrentVersion, headers[^1].Version);
    }

    [Fact]
    public async Task Replay_honours_from_and_to_bounds()
    {
        var pid = await VolumeWithFiveWritesAsync();
        Assert.Equal([3L, 4, 5], Replay(pid, 3, 5, long.MaxValue).Headers.Select(h => h.Lsn));
        Assert.Equal([6L], Replay(pid, 6, 100, long.MaxValue).Headers.Select(h => h.Lsn));
        Assert.Empty(Replay(pid, 7, 100, long.MaxValue).Headers);
    }

    [Fact]
    public async Task Replay_honours_max()
    {
        var pid = await VolumeWithFiveWritesAsync();
        Assert.Equal([2L, 3], Replay(pid, 2, long.MaxValue, 2).Headers.Select(h => h.Lsn));
        Assert.Equal([1L], Replay(pid, 1, long.MaxValue, 1).Headers.Select(h => h.Lsn));
        Assert.Empty(Replay(pid, 1, long.MaxValue, 0).Headers);
    }

    [Fact]
    public async Task Deleted_entries_are_not_replayed_and_the_marker_survives_a_new_journal()
    {
        var pid = await VolumeWithFiveWritesAsync();
        _journal.Tell(new DeleteMessagesTo(pid, 3, _sender.Ref));
        _sender.ExpectMsg<DeleteMessagesSuccess>(m => m.ToSequenceNr == 3);
        Assert.Equal([4L, 5, 6], Replay(pid, 1, long.MaxValue, long.MaxValue).Headers.Select(h => h.Lsn));
        Assert.Equal([4L, 5], Replay(pid, 2, 5, long.MaxValue).Headers.Select(h => h.Lsn));
        // The marker is on disk next to the device: a fresh reader (e.g. after a restart) sees it.
        Assert.Equal(3, new DeletedMarkers(DevicePath + ".journal").Get(pid));
    }

    [Fact]
    public async Task Highest_sequence_number_never_decreases_after_deletes()
    {
        var pid = await VolumeWithFiveWritesAsync();
        _journal.Tell(new DeleteMessagesTo(pid, 6, _sender.Ref));
        _sender.ExpectMsg<DeleteMessagesSuccess>();
        var (headers, highest) = Replay(pid, 1, long.MaxValue, long.MaxValue);
        Assert.Empty(headers);
        Assert.Equal(6, highest);
        Assert.Equal(6, Replay(pid, 0, 0, 0).Highest);
        // Deleting past the head does not hide entries written later.
        _journal.Tell(new DeleteMessagesTo(pid, 100, _sender.Ref));
        _sender.ExpectMsg<DeleteMessagesSuccess>();
        WriteAndExpect(pid, [Data(7)], 7);
        Assert.Equal([7L], Replay(pid, 1, long.MaxValue, long.MaxValue).Headers.Select(h => h.Lsn));
    }

    [Fact]
    public async Task Highest_sequence_number_waits_for_writes_in_flight()
    {
        var pid = await VolumeWithFiveWritesAsync();
        var writes = Enumerable.Range(7, 20).Select(lsn => (IPersistentEnvelope)Atomic(pid, lsn, Data(lsn))).ToArray();
        _journal.Tell(new WriteMessages(writes, _sender.Ref, 1));
        var replayer = CreateTestProbe();
        _journal.Tell(new ReplayMessages(26, long.MaxValue, long.MaxValue, pid, replayer.Ref)); // sent before any write is confirmed
        Assert.Equal(26, replayer.ExpectMsg<ReplayedMessage>().Persistent.SequenceNr);
        Assert.Equal(26, replayer.ExpectMsg<RecoverySuccess>().HighestSequenceNr);
    }

    [Fact]
    public async Task An_unknown_volume_replays_nothing()
    {
        var (headers, highest) = Replay(Id160.Random().ToString(), 1, long.MaxValue, long.MaxValue);
        Assert.Empty(headers);
        Assert.Equal(0, highest);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Unknown_events_are_rejected_and_later_events_are_stored_with_the_next_lsns()
    {
        var pid = await VolumeWithFiveWritesAsync();
        WriteAndExpect(pid, [Data(7), "not a volume event", Data(8) with { Offset = 8 * 512 }], 7, rejected: 8);
        var (headers, highest) = Replay(pid, 1, long.MaxValue, long.MaxValue);
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7, 8], headers.Select(h => h.Lsn));
        Assert.Equal(8 * 512, headers[^1].Offset); // the event after the rejected one
        Assert.Equal(8, highest);
        var stored = new byte[512];
        await Store.ReadAsync(Id160.Parse(pid), 8 * 512, stored);
        Assert.Equal(Pattern(512, 8), stored);
    }

    [Fact]
    public async Task Writes_the_engine_refuses_are_rejected_and_store_nothing()
    {
        var pid = await VolumeWithFiveWritesAsync();
        var beyondEnd = new DataWritten(16 << 20, new byte[512], false);
        WriteAndExpect(pid, [beyondEnd], 7, rejected: 7);
        Assert.Equal(6, Store.GetVolume(Id160.Parse(pid))!.Lsn);
        WriteAndExpect("not-a-volume-id", ["x"], 1, rejected: 1);
    }
}
