// Full resync: a volume whose history the writer compacted away moves whole to another store (same bytes and head, live
// entries apply after it), survives a crash of the receiver at any point (old copy or whole new copy), refuses forged
// or missing pieces, and compacts like any volume afterwards.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class ResyncTests
{
    private const int Size = 2 << 20;

    private static async Task<byte[]> ReadAll(LogStore s, Id160 v)
    {
        var b = new byte[Size];
        await s.ReadAsync(v, 0, b);
        return b;
    }

    /// <summary>Writes (and overwrites) the first 1.5 MiB of the volume, a zeroed range, the last 512 KiB left a hole.</summary>
    private static async Task Churn(LogStore s, Id160 v, byte[] model, int seed, int rounds = 3)
    {
        for (var round = 0; round < rounds; round++)
            for (var off = 0; off < 3 * Size / 4; off += 64 << 10)
            {
                var d = TempLog.Pattern(64 << 10, seed + round * 1000 + off / 4096);
                d.AsSpan(8192, 4096).Clear();
                await s.WriteAsync(v, off, d);
                d.CopyTo(model, off);
            }
        await s.WriteZeroesAsync(v, 128 << 10, 64 << 10);
        model.AsSpan(128 << 10, 64 << 10).Clear();
    }

    /// <summary>A writer whose volume (replicated, every replica caught up) was churned and compacted: lsn 0 no longer streams.</summary>
    private static async Task<Id160> CompactedVolume(LogStore a, byte[] model, Id160 replica)
    {
        var v = (await a.CreateVolumeAsync(Size, VolumeMode.Sync, [a.HostId, replica])).BaseId;
        await Churn(a, v, model, 1);
        a.SetStreamFloor(v, a.GetVolume(v)!.Lsn);
        Assert.True((await a.CompactAsync()).SegmentsCompacted > 0, "the writer compacted nothing");
        await Assert.ThrowsAsync<VersionCompactedException>(() => a.Streams.StreamAsync(v, 0, new MemoryStream(), follow: false));
        return v;
    }

    [Fact]
    public async Task A_volume_whose_history_was_compacted_resyncs_whole_and_then_follows_live_entries()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var model = new byte[Size];
        await using var a = ta.Open(size: 48 << 20, segment: 256 << 10);
        var b = tb.Open(size: 48 << 20, segment: 256 << 10);
        var v = await CompactedVolume(a, model, b.HostId);
        var atL = (byte[])model.Clone();
        var head = a.GetVolume(v)!;

        // The writer goes on writing while the transfer is read: the pieces stay as of the transfer's lsn.
        var later = (byte[])model.Clone();
        var chunks = await ResyncTransfer.ReadAsync(a, v, _ => Churn(a, v, later, 50, rounds: 1));
        Assert.True(chunks.Count > 2, $"the transfer came in {chunks.Count} pieces, not in bounded pieces");
        Assert.All(chunks, c => Assert.True(c.Data.Length <= ResyncTransfer.Piece + 4096, $"a piece of {c.Data.Length} bytes"));
        Assert.Equal(head.Lsn, chunks[^1].Lsn);
        // Holes and zeroed ranges are not sent: the last quarter was never written.
        Assert.True(chunks.Sum(c => (long)c.Data.Length) < 3L * Size / 4 + 64 * 1024, "unwritten ranges were sent");

        var done = await ResyncTransfer.ApplyAsync(b, chunks);
        Assert.True(done.Committed);
        var held = b.GetVolume(v)!;
        Assert.Equal(head.Lsn, held.Lsn);
        Assert.Equal(head.CurrentVersion, held.CurrentVersion);
        Assert.Equal(head.Replicas, held.Replicas);
        Assert.Equal(head.SizeBytes, held.SizeBytes);
        Assert.Equal(head.Mode, held.Mode);
        Assert.False(held.IsWritable);
        Assert.Equal(atL, await ReadAll(b, v));

        // Ordinary entries after the transfer's lsn chain on.
        var stream = new MemoryStream();
        await a.Streams.StreamAsync(v, head.Lsn, stream, follow: false);
        stream.Position = 0;
        var applied = await b.Streams.ApplyAsync(stream);
        Assert.True(applied.Ok, applied.Error);
        Assert.True(applied.Applied > 0);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        Assert.Equal(later, await ReadAll(b, v));

        // And all of it survives a clean restart (the checkpoint) and a crash (replay).
        await b.DisposeAsync();
        b = tb.Open(size: 48 << 20, segment: 256 << 10);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        Assert.Equal(later, await ReadAll(b, v));
        b.CloseWithoutCheckpoint();
        await using var again = tb.Open(size: 48 << 20, segment: 256 << 10);
        Assert.Equal(later, await ReadAll(again, v));
    }

    [Fact]
    public async Task A_crash_at_any_point_of_a_resync_leaves_the_old_copy_or_the_whole_new_one()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var oldModel = new byte[Size];
        var newModel = new byte[Size];
        await using var a = ta.Open(size: 48 << 20, segment: 256 << 10);
        Id160 v;
        VolumeInfo oldHead;
        await using (var b = tb.Open(size: 48 << 20, segment: 256 << 10))
        {
            // The replica holds an early copy, then falls behind history the writer compacts away.
            v = (await a.CreateVolumeAsync(Size, VolumeMode.Sync, [a.HostId, b.HostId])).BaseId;
            await a.WriteAsync(v, 0, TempLog.Pattern(256 << 10, 9));
            TempLog.Pattern(256 << 10, 9).CopyTo(oldModel, 0);
            var s = new MemoryStream();
            await a.Streams.StreamAsync(v, 0, s, follow: false);
            s.Position = 0;
            Assert.True((await b.Streams.ApplyAsync(s)).Ok);
            oldHead = b.GetVolume(v)!;
            oldModel.CopyTo(newModel, 0);
        }
        await Churn(a, v, newModel, 3);
        a.SetStreamFloor(v, a.GetVolume(v)!.Lsn);
        Assert.True((await a.CompactAsync()).SegmentsCompacted > 0);
        var newHead = a.GetVolume(v)!;
        var chunks = await ResyncTransfer.ReadAsync(a, v);

        var rng = new Random(4242);
        var sawOld = false;
        var sawNew = false;
        for (var trial = 0; trial < 10; trial++)
        {
            using var tc = new TempLog();
            File.Copy(tb.Path, tc.Path);
            File.Copy(tb.Path + ".keys", tc.Path + ".keys");
            var c = tc.Open(size: 48 << 20, segment: 256 << 10);
            var before = await c.DurablePositionAsync();
            // Apply some pieces (all of them, commit included, in some trials), then lose everything after a random point.
            var upto = trial < 3 ? chunks.Count : rng.Next(0, chunks.Count + 1);
            // A checkpoint asked for half way must not record a position past staged pieces (it waits for the commit).
            for (var i = 0; i < upto; i++)
            {
                await c.Resync.ApplyAsync(chunks[i].Data);
                if (i == chunks.Count / 2) await c.Checkpoints.WriteAsync();
            }
            var after = await c.DurablePositionAsync();
            c.CloseWithoutCheckpoint();
            Assert.True(after >= before, "the replica's log wrapped in a test that assumes it appends in place");
            var cut = trial == 0 ? after : before + rng.NextInt64(0, (after - before) / 512 + 1) * 512;
            if (after > cut) tc.Poke(cut, new byte[after - cut]);

            await using var r = tc.Open(size: 48 << 20, segment: 256 << 10);
            var got = r.GetVolume(v)!;
            var bytes = await ReadAll(r, v);
            if (got.Lsn == oldHead.Lsn)
            {
                Assert.Equal(oldHead.CurrentVersion, got.CurrentVersion);
                Assert.Equal(oldModel, bytes);
                sawOld = true;
                // The interrupted transfer is gone; the whole of it applies again from scratch.
                Assert.True((await ResyncTransfer.ApplyAsync(r, chunks)).Committed);
                Assert.Equal(newModel, await ReadAll(r, v));
            }
            else
            {
                Assert.Equal(newHead.Lsn, got.Lsn);
                Assert.Equal(newHead.CurrentVersion, got.CurrentVersion);
                Assert.Equal(newModel, bytes);
                sawNew = true;
            }
            if (trial == 0) Assert.Equal(newHead.Lsn, got.Lsn); // nothing lost: the commit was durable
        }
        Assert.True(sawOld && sawNew, $"the trials saw old={sawOld} new={sawNew}; both outcomes should occur");
    }

    [Fact]
    public async Task A_forged_or_missing_piece_is_refused_and_the_held_copy_stays()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var model = new byte[Size];
        await using var a = ta.Open(size: 48 << 20, segment: 256 << 10);
        await using var b = tb.Open(size: 48 << 20, segment: 256 << 10);
        var v = await CompactedVolume(a, model, b.HostId);
        var chunks = await ResyncTransfer.ReadAsync(a, v);
        Assert.True(chunks.Count >= 3);

        // A flipped byte in a stored block: refused at that piece.
        var forged = (byte[])chunks[1].Data.Clone();
        forged[forged.Length / 2] ^= 0x40;
        await b.Resync.ApplyAsync(chunks[0].Data);
        var e = await Assert.ThrowsAsync<ResyncRefusedException>(() => b.Resync.ApplyAsync(forged));
        Assert.Contains("checksum", e.Message);
        Assert.Null(b.GetVolume(v));
        // The transfer was abandoned: the rest of it cannot complete it.
        await Assert.ThrowsAsync<ResyncRefusedException>(() => ResyncTransfer.ApplyAsync(b, chunks.Skip(2)));
        Assert.Null(b.GetVolume(v));

        // A truncated transfer (a middle piece missing): the commit finds the totals short and installs nothing.
        var fresh = await ResyncTransfer.ReadAsync(a, v);
        await b.Resync.ApplyAsync(fresh[0].Data);
        var missing = await Assert.ThrowsAsync<ResyncRefusedException>(() => ResyncTransfer.ApplyAsync(b, fresh.Skip(2)));
        Assert.Contains("missing", missing.Message);
        Assert.Null(b.GetVolume(v));

        // A stream entry is not a resync piece.
        var s = new MemoryStream();
        await a.Streams.StreamAsync(v, a.GetVolume(v)!.Lsn - 1, s, follow: false);
        await Assert.ThrowsAsync<ResyncRefusedException>(() => b.Resync.ApplyAsync(s.ToArray()));

        // A whole transfer still succeeds afterwards; then one for a copy already at that lsn is refused.
        var whole = await ResyncTransfer.ReadAsync(a, v);
        Assert.True((await ResyncTransfer.ApplyAsync(b, whole)).Committed);
        Assert.Equal(model, await ReadAll(b, v));
        var dup = await ResyncTransfer.ReadAsync(a, v);
        await Assert.ThrowsAsync<ResyncRefusedException>(() => b.Resync.ApplyAsync(dup[0].Data));
        Assert.Equal(model, await ReadAll(b, v));
    }

    [Fact]
    public async Task Compaction_on_a_resynced_replica_keeps_its_bytes()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var model = new byte[Size];
        await using var a = ta.Open(size: 48 << 20, segment: 256 << 10);
        var b = tb.Open(size: 48 << 20, segment: 256 << 10);
        var v = await CompactedVolume(a, model, b.HostId);
        Assert.True((await ResyncTransfer.ApplyAsync(b, await ResyncTransfer.ReadAsync(a, v))).Committed);
        var lsn = a.GetVolume(v)!.Lsn;

        // Overwrite most of what the resync brought, so its pieces' segments turn mostly dead, and follow that.
        await Churn(a, v, model, 77, rounds: 2);
        var s = new MemoryStream();
        await a.Streams.StreamAsync(v, lsn, s, follow: false);
        s.Position = 0;
        Assert.True((await b.Streams.ApplyAsync(s)).Ok);
        var result = await b.CompactAsync();
        Assert.True(result.SegmentsCompacted > 0, "the replica compacted nothing");
        Assert.Equal(model, await ReadAll(b, v));
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        b.CloseWithoutCheckpoint();
        await using var again = tb.Open(size: 48 << 20, segment: 256 << 10);
        Assert.Equal(model, await ReadAll(again, v));
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, again.GetVolume(v)!.CurrentVersion);
    }

    [Fact]
    public async Task The_writer_compacting_during_a_transfer_still_sends_the_volume_as_of_its_lsn()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var model = new byte[Size];
        await using var a = ta.Open(size: 48 << 20, segment: 256 << 10);
        await using var b = tb.Open(size: 48 << 20, segment: 256 << 10);
        var v = await CompactedVolume(a, model, b.HostId);
        var head = a.GetVolume(v)!;
        // Between pieces the writer overwrites everything and compacts (its replicas hold it all): the blocks the
        // transfer still has to send are dead for the volume, alive only in the transfer's snapshot, and get moved.
        long copied = 0;
        var chunks = await ResyncTransfer.ReadAsync(a, v, async _ =>
        {
            await Churn(a, v, new byte[Size], 500, rounds: 2);
            a.SetStreamFloor(v, a.GetVolume(v)!.Lsn);
            copied += (await a.CompactAsync()).BytesCopied;
        });
        Assert.True(copied > 0, "the writer's compaction moved nothing during the transfer");
        Assert.True((await ResyncTransfer.ApplyAsync(b, chunks)).Committed);
        Assert.Equal(head.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        Assert.Equal(model, await ReadAll(b, v));
    }
}
