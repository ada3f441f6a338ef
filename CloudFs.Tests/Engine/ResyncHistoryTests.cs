// A full resync of a volume that keeps history (a protected version, cloudfs.retention.time) goes as of the sender's
// history base, not its head: the receiver holds the base's image and chain state, pulls the entries after it, and so
// keeps the same versions branchable, readable and diffable as the sender, through compaction, a crash and a restart.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class ResyncHistoryTests
{
    private const int K = 1024;
    private const int Size = 1 << 20;
    private const long LogSize = 48 << 20;

    private static async Task OverwriteThreeTimes(LogStore s, Id160 v, int seed)
    {
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < Size; off += 64 * K)
                await s.WriteAsync(v, off, TempLog.Pattern(64 * K, seed + round * 1000 + off / 4096));
    }

    /// <summary>The sender's entries after <paramref name="lsn"/>, applied on the receiver (what a replica pulls after a resync).</summary>
    private static async Task Pull(LogStore from, LogStore to, Id160 v, long lsn)
    {
        var stream = new MemoryStream();
        await from.Streams.StreamAsync(v, lsn, stream, follow: false);
        stream.Position = 0;
        var applied = await to.Streams.ApplyAsync(stream);
        Assert.True(applied.Ok, applied.Error);
    }

    /// <summary>The version reads, branches and diffs on <paramref name="s"/> as it does on the sender.</summary>
    private static async Task AssertVersionUsable(LogStore s, Id160 v, Id160 version, byte[] image, ChangedRanges diff)
    {
        var view = new byte[image.Length];
        await s.ReadVersionAsync(v, version, 0, view);
        Assert.Equal(image, view);
        var branch = (await s.BranchAsync(version)).BaseId;
        var read = new byte[image.Length];
        await s.ReadAsync(branch, 0, read);
        Assert.Equal(image, read);
        var got = await s.Streams.ChangedBetweenAsync(v, version);
        Assert.Equal(diff.Ranges, got.Ranges);
        Assert.Equal((diff.FromSizeBytes, diff.ToSizeBytes), (got.FromSizeBytes, got.ToSizeBytes));
    }

    [Fact]
    public async Task A_replica_resynced_whole_keeps_the_protected_version_through_compaction_a_crash_and_a_restart()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var sender = ta.Options(size: LogSize);
        Id160 v, protectedVersion;
        long protectedLsn;
        var image = TempLog.Pattern(Size, 1);
        await using (var a = TempLog.OpenRetrying(sender))
        {
            v = (await a.CreateVolumeAsync(Size, VolumeMode.Sync, [a.HostId, Id160.Random()])).BaseId;
            // History before the protected version, which compaction reclaims (its data is overwritten).
            await OverwriteThreeTimes(a, v, 3);
            await a.WriteAsync(v, 0, image);
            var at = a.GetVolume(v)!;
            (protectedVersion, protectedLsn) = (at.CurrentVersion, at.Lsn);
            // Protected later on: its protect entry is not the one right after it.
            await a.WriteAsync(v, 512 * K, TempLog.Pattern(64 * K, 2));
            await a.ProtectVersionAsync(v, protectedVersion, protect: true);
            // After the protected version: overwrites, a resize and a view change (a new replica set), so the
            // receiver's state at the base (size, view) differs from the head's.
            await OverwriteThreeTimes(a, v, 7);
            await a.ResizeVolumeAsync(v, 2 * Size, allowShrink: false);
            await a.Ownership.TakeOverAsync(v, [], [a.HostId, Id160.Random(), Id160.Random()]);
            await a.WriteAsync(v, 0, TempLog.Pattern(64 * K, 99));
            a.SetStreamFloor(v, a.GetVolume(v)!.Lsn);
            await a.CompactAsync();
            await a.CompactAsync();
            await Assert.ThrowsAsync<VersionCompactedException>(() => a.Streams.StreamAsync(v, 0, new MemoryStream(), follow: false));
        }
        // The sender restarts first: its history base (and the chain state at it) comes back from its checkpoint.
        await using var src = TempLog.OpenRetrying(sender);
        var head = src.GetVolume(v)!;
        var diff = await src.Streams.ChangedBetweenAsync(v, protectedVersion);

        var chunks = await ResyncTransfer.ReadAsync(src, v);
        Assert.Equal(protectedLsn, chunks[^1].Lsn);
        Assert.Equal(protectedVersion, chunks[^1].Version);
        var b = tb.Open(size: LogSize);
        Assert.True((await ResyncTransfer.ApplyAsync(b, chunks)).Committed);
        var installed = b.GetVolume(v)!;
        Assert.Equal((protectedLsn, protectedVersion, (long)Size, 0L), (installed.Lsn, installed.CurrentVersion, installed.SizeBytes, installed.ViewNumber));
        // A compaction pass before the entries after the base arrive (their protect entry among them) keeps the base.
        await b.CompactAsync();
        await Pull(src, b, v, protectedLsn);
        var caughtUp = b.GetVolume(v)!;
        Assert.Equal((head.Lsn, head.CurrentVersion, head.SizeBytes, head.ViewNumber), (caughtUp.Lsn, caughtUp.CurrentVersion, caughtUp.SizeBytes, caughtUp.ViewNumber));
        Assert.Equal(head.Replicas, caughtUp.Replicas);
        Assert.Equal([protectedVersion], caughtUp.Protected);
        await AssertVersionUsable(b, v, protectedVersion, image, diff);

        // A crash: replay installs the resync again (its base with it) and applies the entries after it.
        b.CloseWithoutCheckpoint();
        b = tb.Open(size: LogSize);
        Assert.Equal([protectedVersion], b.GetVolume(v)!.Protected);
        await AssertVersionUsable(b, v, protectedVersion, image, diff);
        await b.CompactAsync();
        await b.CompactAsync();
        await AssertVersionUsable(b, v, protectedVersion, image, diff);

        // A clean restart: the base comes from the checkpoint.
        await b.DisposeAsync();
        await using var again = tb.Open(size: LogSize);
        Assert.Equal([protectedVersion], again.GetVolume(v)!.Protected);
        await AssertVersionUsable(again, v, protectedVersion, image, diff);
    }

    [Fact]
    public async Task A_history_base_from_an_older_checkpoint_is_sent_as_of_the_base_unless_the_view_changed_after_it()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var sender = ta.Options(size: LogSize);
        Id160 v, kept;
        long keptLsn;
        await using (var a = TempLog.OpenRetrying(sender))
        {
            v = (await a.CreateVolumeAsync(Size, VolumeMode.Async, [a.HostId, Id160.Random()])).BaseId;
            await OverwriteThreeTimes(a, v, 3);
            await a.WriteAsync(v, 0, TempLog.Pattern(Size, 1));
            (kept, keptLsn) = (a.GetVolume(v)!.CurrentVersion, a.GetVolume(v)!.Lsn);
            await a.ProtectVersionAsync(v, kept, protect: true);
            await OverwriteThreeTimes(a, v, 7);
            await a.ResizeVolumeAsync(v, 2 * Size, allowShrink: false);
            a.SetStreamFloor(v, a.GetVolume(v)!.Lsn);
            await a.CompactAsync();
            await a.CompactAsync();
            // As a build before the chain state was kept left it: the checkpoint holds the base without it (kind 3).
            var vol = a.VolumeStates[v];
            lock (vol.IndexLock) vol.History = vol.History! with { Chain = null };
        }
        await using var src = TempLog.OpenRetrying(sender);
        Assert.Null(src.VolumeStates[v].History!.Chain);
        var diff = await src.Streams.ChangedBetweenAsync(v, kept);

        // Nothing after the base changed the view or the trash state: the state is the head's, and the resync is as of the base.
        var chunks = await ResyncTransfer.ReadAsync(src, v);
        Assert.Equal(keptLsn, chunks[^1].Lsn);
        await using var b = tb.Open(size: LogSize);
        Assert.True((await ResyncTransfer.ApplyAsync(b, chunks)).Committed);
        Assert.Equal((long)Size, b.GetVolume(v)!.SizeBytes);
        await Pull(src, b, v, keptLsn);
        Assert.Equal(src.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        await AssertVersionUsable(b, v, kept, TempLog.Pattern(Size, 1), diff);

        // After a view change the state at the base cannot be told from the head's: the resync goes as of the head.
        await src.Ownership.TakeOverAsync(v, [], [src.HostId, Id160.Random(), Id160.Random()]);
        var vs = src.VolumeStates[v];
        lock (vs.IndexLock) vs.History = vs.History! with { Chain = null };
        Assert.Equal(src.GetVolume(v)!.Lsn, (await ResyncTransfer.ReadAsync(src, v))[^1].Lsn);
        Assert.Contains(ta.Messages, m => m.Contains("cannot be derived"));
    }

    [Fact]
    public async Task A_branch_is_sent_flat_as_of_its_history_base_and_its_protected_version_reads_through_its_parent_as_on_the_sender()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open(size: LogSize);
        var source = (await a.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(source, 0, TempLog.Pattern(Size, 1));
        var branch = (await a.BranchAsync(a.GetVolume(source)!.CurrentVersion)).BaseId;
        // The branch's own writes cover half of it; the rest reads through its parent (the source's version).
        for (var round = 0; round < 3; round++)
            await a.WriteAsync(branch, 0, TempLog.Pattern(Size / 2, 10 + round));
        var kept = a.GetVolume(branch)!;
        var image = new byte[Size];
        await a.ReadAsync(branch, 0, image);
        await a.ProtectVersionAsync(branch, kept.CurrentVersion, protect: true);
        for (var round = 0; round < 3; round++)
            await a.WriteAsync(branch, 0, TempLog.Pattern(Size, 20 + round));
        await a.CompactAsync();
        await a.CompactAsync();
        await Assert.ThrowsAsync<VersionCompactedException>(() => a.Streams.StreamAsync(branch, 0, new MemoryStream(), follow: false));
        var diff = await a.Streams.ChangedBetweenAsync(branch, kept.CurrentVersion);

        var chunks = await ResyncTransfer.ReadAsync(a, branch);
        Assert.Equal(kept.Lsn, chunks[^1].Lsn);
        // The receiver does not hold the source volume: the branch comes flat, parent included.
        await using var b = tb.Open(size: LogSize);
        Assert.True((await ResyncTransfer.ApplyAsync(b, chunks)).Committed);
        Assert.Null(b.GetVolume(source));
        await Pull(a, b, branch, kept.Lsn);
        Assert.Equal(a.GetVolume(branch)!.CurrentVersion, b.GetVolume(branch)!.CurrentVersion);
        await b.CompactAsync();
        await AssertVersionUsable(b, branch, kept.CurrentVersion, image, diff);
    }

    [Fact]
    public async Task A_replica_already_past_the_history_base_refuses_the_resync_keeps_its_copy_and_pulls_on_from_its_head()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open(size: LogSize);
        await using var b = tb.Open(size: LogSize);
        var v = (await a.CreateVolumeAsync(Size, VolumeMode.Async, [a.HostId, b.HostId])).BaseId;
        await OverwriteThreeTimes(a, v, 3);
        await a.WriteAsync(v, 0, TempLog.Pattern(Size, 1));
        var kept = a.GetVolume(v)!;
        await a.ProtectVersionAsync(v, kept.CurrentVersion, protect: true);
        await a.WriteAsync(v, 0, TempLog.Pattern(64 * K, 2));
        // The replica holds the volume past the protected version (the base), behind the head.
        await Pull(a, b, v, 0);
        var held = b.GetVolume(v)!;
        await OverwriteThreeTimes(a, v, 9);
        a.SetStreamFloor(v, held.Lsn);
        await a.CompactAsync();
        await a.CompactAsync();
        Assert.True(kept.Lsn < held.Lsn && held.Lsn < a.GetVolume(v)!.Lsn);

        // A resync as of the base would take it back: refused, the copy stays; the entries after it are all still there.
        var chunks = await ResyncTransfer.ReadAsync(a, v);
        Assert.Equal(kept.Lsn, chunks[^1].Lsn);
        var e = await Assert.ThrowsAsync<ResyncRefusedException>(() => ResyncTransfer.ApplyAsync(b, chunks));
        Assert.Contains($"held here at lsn {held.Lsn}, not behind the resync's lsn {kept.Lsn}", e.Message);
        Assert.Equal(held.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        await Pull(a, b, v, held.Lsn);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        Assert.Equal([kept.CurrentVersion], b.GetVolume(v)!.Protected);
    }

    [Fact]
    public async Task A_volume_with_its_whole_history_retained_is_resynced_as_of_its_first_entry_and_every_version_stays()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var retained = TimeSpan.FromHours(1);
        await using var a = TempLog.OpenRetrying(ta.Options(size: LogSize) with { RetentionTime = retained });
        var v = (await a.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(Size, 3));
        var first = a.GetVolume(v)!.CurrentVersion;
        await OverwriteThreeTimes(a, v, 11);
        var diff = await a.Streams.ChangedBetweenAsync(v, first);

        var chunks = await ResyncTransfer.ReadAsync(a, v);
        Assert.Equal(1, chunks[^1].Lsn);
        await using var b = TempLog.OpenRetrying(tb.Options(size: LogSize) with { RetentionTime = retained });
        Assert.True((await ResyncTransfer.ApplyAsync(b, chunks)).Committed);
        await Pull(a, b, v, 1);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        await b.CompactAsync();
        await AssertVersionUsable(b, v, first, TempLog.Pattern(Size, 3), diff);
    }

    [Fact]
    public async Task The_entries_after_the_resync_lsn_stay_while_the_sender_s_history_base_moves_on_during_the_transfer()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        // Retention so short that each pass moves the base to the head.
        var options = ta.Options(size: LogSize) with { RetentionTime = TimeSpan.FromMilliseconds(1) };
        await using var a = TempLog.OpenRetrying(options);
        var v = (await a.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await OverwriteThreeTimes(a, v, 5);
        await PassRetention();
        await a.CompactAsync();
        var baseLsn = a.GetVolume(v)!.Lsn;
        var baseVersion = a.GetVolume(v)!.CurrentVersion;
        var atBase = new byte[Size];
        await a.ReadAsync(v, 0, atBase);
        await a.WriteAsync(v, 0, TempLog.Pattern(64 * K, 1));

        // Between pieces the volume is overwritten and compacted with the history released each time: the base moves
        // past the transfer's lsn, yet the entries after that lsn stay for the receiver to pull.
        var chunks = await ResyncTransfer.ReadAsync(a, v, async _ =>
        {
            await OverwriteThreeTimes(a, v, 50);
            await PassRetention();
            await a.CompactAsync();
        });
        Assert.Equal(baseLsn, chunks[^1].Lsn);
        Assert.False(a.CanBranchFrom(baseVersion), "the sender's history base did not move past the transfer's lsn");
        await using var b = tb.Open(size: LogSize);
        Assert.True((await ResyncTransfer.ApplyAsync(b, chunks)).Committed);
        var installed = new byte[Size];
        await b.ReadAsync(v, 0, installed);
        Assert.Equal(atBase, installed);
        await Pull(a, b, v, baseLsn);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);

        static async Task PassRetention()
        {
            var start = DateTime.UtcNow;
            await Eventually.Until(() => DateTime.UtcNow - start > TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(5), "the retention time to pass");
        }
    }
}
