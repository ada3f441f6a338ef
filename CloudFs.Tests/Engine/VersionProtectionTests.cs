// Protected versions (LogStore.Protection.cs: `cloudfs protect VERSION` / `unprotect`): with no retention time at all, a
// protected version stays branchable, readable and diffable after the volume is overwritten and compacted, also after
// a restart; once unprotected compaction reclaims it and it is refused by name. And what the checkpoint keeps of
// history (the history and changes sections): a restart keeps the retention base and what each entry changed.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class VersionProtectionTests
{
    private const int K = 1024;
    private const int Size = 1 << 20;

    private static async Task OverwriteThreeTimes(LogStore s, Id160 v, int seed)
    {
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < Size; off += 64 * K)
                await s.WriteAsync(v, off, TempLog.Pattern(64 * K, seed + round * 1000 + off / 4096));
    }

    private static async Task AssertVersionUsable(LogStore s, Id160 v, Id160 version, byte[] expected)
    {
        var branch = (await s.BranchAsync(version)).BaseId;
        var read = new byte[Size];
        await s.ReadAsync(branch, 0, read);
        Assert.Equal(expected, read);
        var view = new byte[Size];
        await s.ReadVersionAsync(v, version, 0, view);
        Assert.Equal(expected, view);
        Assert.Equal([new ChangedRange(0, Size)], (await s.Streams.ChangedBetweenAsync(v, version)).Ranges);
    }

    [Fact]
    public async Task A_protected_version_outlives_compaction_and_a_restart_without_retention_and_goes_once_unprotected()
    {
        using var t = new TempLog();
        var options = t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.Zero };
        Id160 v, old;
        await using (var s = TempLog.OpenRetrying(options))
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, TempLog.Pattern(Size, 1));
            old = s.GetVolume(v)!.CurrentVersion;
            var info = await s.ProtectVersionAsync(v, old, protect: true);
            Assert.Equal([old], info.Protected);
            await OverwriteThreeTimes(s, v, 7);
            await s.CompactAsync();
            await s.CompactAsync();
            await AssertVersionUsable(s, v, old, TempLog.Pattern(Size, 1));
        }
        await using (var s = TempLog.OpenRetrying(options))
        {
            Assert.Equal([old], s.GetVolume(v)!.Protected);
            await OverwriteThreeTimes(s, v, 9);
            await s.CompactAsync();
            await s.CompactAsync();
            await AssertVersionUsable(s, v, old, TempLog.Pattern(Size, 1));

            var released = await s.ProtectVersionAsync(v, old, protect: false);
            Assert.Empty(released.Protected);
            var head = s.GetVolume(v)!.CurrentVersion;
            Assert.True((await s.CompactAsync()).SegmentsCompacted > 0, "nothing was compacted once unprotected");
            var e = await Assert.ThrowsAsync<VersionCompactedException>(() => s.BranchAsync(old));
            Assert.Contains($"version {old} is no longer available", e.Message);
            Assert.Equal(head, e.OldestAvailable);
        }
    }

    [Fact]
    public async Task A_replica_takes_the_protection_from_the_stream_and_keeps_the_version_through_compaction_and_a_restart()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        Id160 v, old;
        var stream = new MemoryStream();
        await using (var a = TempLog.OpenRetrying(ta.Options(size: 24 << 20) with { RetentionTime = TimeSpan.Zero }))
        {
            v = (await a.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await a.WriteAsync(v, 0, TempLog.Pattern(Size, 1));
            old = a.GetVolume(v)!.CurrentVersion;
            await a.ProtectVersionAsync(v, old, protect: true);
            await OverwriteThreeTimes(a, v, 7);
            await a.Streams.StreamAsync(v, 0, stream, follow: false);
        }
        var replica = tb.Options(size: 24 << 20) with { RetentionTime = TimeSpan.Zero };
        await using (var b = TempLog.OpenRetrying(replica))
        {
            stream.Position = 0;
            Assert.True((await b.Streams.ApplyAsync(stream)).Ok);
            Assert.Equal([old], b.GetVolume(v)!.Protected);
            await b.CompactAsync();
            await b.CompactAsync();
            await AssertVersionUsable(b, v, old, TempLog.Pattern(Size, 1));
        }
        await using (var b = TempLog.OpenRetrying(replica))
        {
            Assert.Equal([old], b.GetVolume(v)!.Protected);
            await b.CompactAsync();
            await AssertVersionUsable(b, v, old, TempLog.Pattern(Size, 1));
        }
    }

    [Fact]
    public async Task A_fork_split_drops_the_protections_of_the_versions_it_rewinds_and_the_checkpoint_after_it_loads()
    {
        using var t = new TempLog();
        Id160 v;
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, TempLog.Pattern(4 * K, 1));
            var kept = s.GetVolume(v)!;
            await s.ProtectVersionAsync(v, kept.CurrentVersion, protect: true);
            await s.WriteAsync(v, 8 * K, TempLog.Pattern(4 * K, 2));
            var rewound = s.GetVolume(v)!.CurrentVersion;
            await s.ProtectVersionAsync(v, rewound, protect: true);
            Assert.Equal([kept.CurrentVersion, rewound], s.GetVolume(v)!.Protected);

            await s.SplitForkAsync(v, kept.Lsn + 1);
            Assert.Equal([kept.CurrentVersion], s.GetVolume(v)!.Protected);
            await s.Checkpoints.WriteAsync();
        }
        await using (var s = t.Open())
        {
            Assert.DoesNotContain(t.Messages, m => m.Contains("unusable"));
            Assert.Equal([s.VersionAt(v, 2)], s.GetVolume(v)!.Protected);
        }
    }

    [Fact]
    public async Task A_fork_split_that_rewinds_a_protect_or_an_unprotect_of_an_earlier_version_undoes_it_also_after_a_restart()
    {
        using var t = new TempLog();
        Id160 v, first, second;
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, TempLog.Pattern(4 * K, 1));
            first = s.GetVolume(v)!.CurrentVersion;
            await s.WriteAsync(v, 8 * K, TempLog.Pattern(4 * K, 2));
            second = s.GetVolume(v)!.CurrentVersion;
            await s.ProtectVersionAsync(v, first, protect: true);
            var keep = s.GetVolume(v)!.Lsn; // first protected, second not
            // The suffix the split rewinds: a protect of an earlier version (second), an unprotect of one (first).
            await s.ProtectVersionAsync(v, second, protect: true);
            await s.ProtectVersionAsync(v, first, protect: false);
            Assert.Equal([second], s.GetVolume(v)!.Protected);

            await s.SplitForkAsync(v, keep);
            Assert.Equal([first], s.GetVolume(v)!.Protected);
        }
        await using (var s = t.Open())
            Assert.Equal([first], s.GetVolume(v)!.Protected);
    }

    [Fact]
    public async Task Compaction_keeps_the_protected_version_and_nothing_older()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.Zero });
        var v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(Size, 1));
        var older = s.GetVolume(v)!.CurrentVersion;
        await OverwriteThreeTimes(s, v, 7);
        await s.WriteAsync(v, 0, TempLog.Pattern(Size, 2));
        var kept = s.GetVolume(v)!.CurrentVersion;
        await s.ProtectVersionAsync(v, kept, protect: true);
        await OverwriteThreeTimes(s, v, 9);
        Assert.True((await s.CompactAsync()).SegmentsCompacted > 0, "nothing older than the protected version was reclaimed");
        await s.CompactAsync();

        await AssertVersionUsable(s, v, kept, TempLog.Pattern(Size, 2));
        var e = await Assert.ThrowsAsync<VersionCompactedException>(() => s.BranchAsync(older));
        Assert.Equal(kept, e.OldestAvailable);
    }

    [Fact]
    public async Task Protecting_an_unknown_version_or_unprotecting_one_not_protected_is_refused_and_changes_nothing()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options() with { RetentionTime = TimeSpan.Zero });
        var v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(4 * K, 1));
        var head = s.GetVolume(v)!;
        var unknown = Id160.Random();
        await Assert.ThrowsAsync<UnknownVersionException>(() => s.ProtectVersionAsync(v, unknown, protect: true));
        var e = await Assert.ThrowsAsync<CloudFsException>(() => s.ProtectVersionAsync(v, head.CurrentVersion, protect: false));
        Assert.Contains($"version {head.CurrentVersion} of volume {v} is not protected", e.Message);
        var after = s.GetVolume(v)!;
        Assert.Equal(head.Lsn, after.Lsn);
        Assert.Empty(after.Protected);
    }

    [Fact]
    public async Task A_restart_keeps_the_retention_base_so_versions_within_the_retention_time_stay_branchable()
    {
        using var t = new TempLog();
        Id160 v, recent;
        // First without retention: compaction reclaims the volume's early history (its oldest lsns are gone).
        await using (var s = TempLog.OpenRetrying(t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.Zero }))
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await OverwriteThreeTimes(s, v, 3);
            Assert.True((await s.CompactAsync()).SegmentsCompacted > 0, "nothing was compacted");
        }
        // Then with an hour of retention: the base starts at the head, and the versions written since are kept.
        var retained = t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.FromHours(1) };
        await using (var s = TempLog.OpenRetrying(retained))
        {
            await s.WriteAsync(v, 0, TempLog.Pattern(Size, 1));
            recent = s.GetVolume(v)!.CurrentVersion;
            await OverwriteThreeTimes(s, v, 5);
            await s.CompactAsync();
            await AssertVersionUsable(s, v, recent, TempLog.Pattern(Size, 1));
        }
        await using (var s = TempLog.OpenRetrying(retained))
        {
            await s.CompactAsync();
            await AssertVersionUsable(s, v, recent, TempLog.Pattern(Size, 1));
        }
    }

    [Fact]
    public async Task A_restart_keeps_what_each_entry_changed_so_a_diff_reads_no_header()
    {
        using var t = new TempLog();
        Id160 v, from;
        await using (var s = t.Open())
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            from = s.GetVolume(v)!.CurrentVersion;
            for (var i = 0; i < 64; i++) await s.WriteAsync(v, i * 8 * K, TempLog.Pattern(4 * K, i));
            await s.WriteZeroesAsync(v, 512 * K, 64 * K);
        }
        await using (var s = t.Open())
        {
            var vol = s.VolumeStates[v];
            lock (vol.IndexLock)
                for (var l = 1; l <= vol.Lsns.Count; l++)
                    Assert.True(vol.Lsns.ChangeOf(l).IsKnown, $"the change of lsn {l} is unknown after the restart");
            var diff = await s.Streams.ChangedBetweenAsync(v, from);
            Assert.Equal(64, diff.Ranges.Count(r => r.Offset < 512 * K));
            Assert.Equal(64 * 4 * K + 64 * K, diff.Bytes);
        }
    }
}
