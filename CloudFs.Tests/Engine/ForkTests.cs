// Fork splits: two primaries of one volume share lsns 1..k and diverge; the host that must follow the other chain keeps
// its suffix as a branch, rewinds the volume to k and applies the other chain, across restart, crash and compaction.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;

namespace CloudFs.Tests.Engine;

public sealed class ForkTests
{
    private const int VolumeSize = 1 << 20;

    private static async Task<byte[]> Read(LogStore s, Id160 v)
    {
        var b = new byte[VolumeSize];
        await s.ReadAsync(v, 0, b);
        return b;
    }

    private static async Task<MemoryStream> Stream(LogStore s, Id160 v, long afterLsn)
    {
        var ms = new MemoryStream();
        await s.Streams.StreamAsync(v, afterLsn, ms, follow: false);
        ms.Position = 0;
        return ms;
    }

    /// <summary>
    /// Lsns 1..k written on A, whose device and key file are then copied to C: two primaries of the same volume.
    /// The early data is rewritten several times so the first segments are mostly dead (for compaction).
    /// </summary>
    private static async Task<(Id160 Volume, long K, byte[] AtK)> SharedHistory(TempLog ta, TempLog tc)
    {
        await using (var a = ta.Open())
        {
            var v = (await a.CreateVolumeAsync(VolumeSize, VolumeMode.Sync, [])).BaseId;
            for (var i = 0; i < 6; i++) await a.WriteAsync(v, 0, TempLog.Pattern(64 << 10, i));
            await a.WriteAsync(v, 256 << 10, TempLog.Pattern(16 << 10, 50));
            await a.WriteZeroesAsync(v, 8192, 4096);
            var k = a.GetVolume(v)!.Lsn;
            var atK = await Read(a, v);
            await a.DisposeAsync();
            File.WriteAllBytes(tc.Path, ta.ReadAll());
            File.Copy(ta.Path + ".keys", tc.Path + ".keys");
            return (v, k, atK);
        }
    }

    /// <summary>Each primary extends lsn k+1.. its own way (overwrites, a zeroed range over data, new ranges).</summary>
    private static async Task Diverge(LogStore a, LogStore c, Id160 v)
    {
        await a.WriteAsync(v, 4096, TempLog.Pattern(8192, 60));
        await a.WriteZeroesAsync(v, 256 << 10, 4096);
        await a.WriteAsync(v, 768 << 10, TempLog.Pattern(4096, 61));
        await c.WriteAsync(v, 0, TempLog.Pattern(4096, 70));
        await c.WriteAsync(v, 512 << 10, TempLog.Pattern(8192, 71));
        await c.WriteAsync(v, 300 << 10, TempLog.Pattern(1024, 72), durable: true);
    }

    [Fact]
    public async Task A_split_fork_keeps_the_suffix_as_a_branch_and_the_volume_follows_the_other_chain()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        var (v, k, atK) = await SharedHistory(ta, tc);
        await using var c = tc.Open();
        var a = ta.Open();
        try
        {
            await Diverge(a, c, v);
            var aHead = a.GetVolume(v)!;
            var aBytes = await Read(a, v);

            // The other chain does not apply as it is: a fork at k+1. The common lsn is the last one both agree on.
            var refused = await a.Streams.ApplyLiveAsync(await Stream(c, v, 0), _ => { });
            Assert.True(refused.IsFork, refused.Error);
            var common = Math.Min(aHead.Lsn, c.GetVolume(v)!.Lsn);
            while (a.VersionAt(v, common) != c.VersionAt(v, common)) common--;
            Assert.Equal(k, common);

            var branch = await a.SplitForkAsync(v, common);
            Assert.NotEqual(v, branch.BaseId);
            Assert.Equal(aHead.CurrentVersion, branch.BranchedFrom);
            Assert.Equal(1, branch.Lsn);
            Assert.True(branch.IsWritable);
            Assert.Equal(aBytes, await Read(a, branch.BaseId));
            var rewound = a.GetVolume(v)!;
            Assert.Equal(k, rewound.Lsn);
            Assert.Equal(c.VersionAt(v, k), rewound.CurrentVersion);
            Assert.False(rewound.IsWritable);
            Assert.Equal(atK, await Read(a, v));
            await Assert.ThrowsAsync<NotPrimaryException>(async () => await a.WriteAsync(v, 0, new byte[512]));
            Assert.DoesNotContain(v.ToString(), File.ReadAllText(ta.Path + ".keys"));
            Assert.Throws<UnknownVersionException>(() => a.FindVersion(aHead.CurrentVersion));

            // Now the other chain applies from k+1, and the volume reads as the other primary's.
            var followed = await a.Streams.ApplyLiveAsync(await Stream(c, v, k), _ => { });
            Assert.True(followed.Ok, followed.Error);
            Assert.Equal(c.GetVolume(v)!.Lsn - k, followed.Applied);
            Assert.Equal(c.GetVolume(v)!.CurrentVersion, a.GetVolume(v)!.CurrentVersion);
            var cBytes = await Read(c, v);
            Assert.Equal(cBytes, await Read(a, v));
            Assert.Equal(aBytes, await Read(a, branch.BaseId));
            Assert.Equal(2, a.ListVolumes().Count);

            // A restart (from the checkpoint) and a crash (replaying the log) both give the same picture.
            await a.DisposeAsync();
            a = ta.Open();
            await a.WriteAsync(branch.BaseId, 0, TempLog.Pattern(512, 80), durable: true);
            a.CloseWithoutCheckpoint();
            a = ta.Open();
            var afterBranch = (byte[])aBytes.Clone();
            TempLog.Pattern(512, 80).CopyTo(afterBranch, 0);
            Assert.Equal(afterBranch, await Read(a, branch.BaseId));
            Assert.Equal(cBytes, await Read(a, v));
            Assert.Equal(c.GetVolume(v)!.CurrentVersion, a.GetVolume(v)!.CurrentVersion);
            Assert.Equal(aHead.CurrentVersion, a.GetVolume(branch.BaseId)!.BranchedFrom);
            Assert.False(a.IsWritable(v));
        }
        finally { await a.DisposeAsync(); }
    }

    [Fact]
    public async Task A_split_fork_recovers_consistently_whether_or_not_the_rewind_reached_the_log()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        using var after = new TempLog();
        using var before = new TempLog();
        var (v, k, atK) = await SharedHistory(ta, tc);
        await using var c = tc.Open();
        var a = ta.Open();
        await Diverge(a, c, v);
        var aHead = a.GetVolume(v)!;
        var aBytes = await Read(a, v);
        var cBytes = await Read(c, v);
        var branch = await a.SplitForkAsync(v, k);
        var end = await a.DurablePositionAsync();
        a.CloseWithoutCheckpoint();
        // The rewind is the last entry: one sector right before the append point, or before the durable mark that follows it.
        if (DurableMark.HasMagic(ta.Peek(end - LogStore.BlockSize, LogStore.BlockSize))) end -= LogStore.BlockSize;
        Assert.True(EntryHeader.TryParse(ta.Peek(end - LogStore.BlockSize, LogStore.BlockSize), out var last, out var err), err);
        Assert.Equal(EntryKind.Rewind, last.Kind);
        var rewindEntry = ta.Peek(end - LogStore.BlockSize, LogStore.BlockSize);
        DeviceImage.Copy(ta.Path, after);
        DeviceImage.Copy(ta.Path, before);
        // As if the rewind never reached the log: neither it nor the mark that says it was flushed.
        before.Poke(end - LogStore.BlockSize, new byte[2 * LogStore.BlockSize]);
        // A well-formed rewind that names another head (checksums and digest made to match) is not applied either.
        using var forged = new TempLog();
        DeviceImage.Copy(ta.Path, forged);
        var bad = (byte[])rewindEntry.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bad.AsSpan(EntryHeader.OffBitmap), aHead.Lsn + 1);
        EntryCodec.WriteDigest(bad, EntryCodec.ComputeDigest(bad));
        EntryCodec.Seal(bad, last.SegmentSeq);
        forged.Poke(end - LogStore.BlockSize, bad);
        await using (var s = TempLog.OpenRetrying(forged.Options()))
        {
            Assert.Contains("does not match the head", s.LastRecovery.StopReason);
            Assert.Equal(aHead.CurrentVersion, s.GetVolume(v)!.CurrentVersion);
            Assert.Equal(aBytes, await Read(s, v));
        }

        // The rewind reached the log: replay rewinds the volume again (no checkpoint was taken after it).
        await using (var s = TempLog.OpenRetrying(after.Options()))
        {
            Assert.Equal(k, s.GetVolume(v)!.Lsn);
            Assert.False(s.IsWritable(v));
            Assert.Equal(atK, await Read(s, v));
            Assert.Equal(aBytes, await Read(s, branch.BaseId));
            Assert.True((await s.Streams.ApplyAsync(await Stream(c, v, k))).Ok);
            Assert.Equal(cBytes, await Read(s, v));
            // A rewind is local: a stream that carries one is refused, by either apply.
            Assert.Contains("never streamed", (await s.Streams.ApplyAsync(new MemoryStream(rewindEntry))).Error);
            Assert.Contains("never streamed", (await s.Streams.ApplyLiveAsync(new MemoryStream(rewindEntry), _ => { })).Error);
        }

        // It did not: the volume is as before the split but no longer writable, the branch exists, and splitting again
        // finishes the job with that same branch.
        await using (var s = TempLog.OpenRetrying(before.Options()))
        {
            Assert.Equal(aHead.CurrentVersion, s.GetVolume(v)!.CurrentVersion);
            Assert.False(s.IsWritable(v));
            Assert.Equal(aBytes, await Read(s, v));
            Assert.Equal(1, s.GetVolume(branch.BaseId)!.Lsn);
            var again = await s.SplitForkAsync(v, k);
            Assert.Equal(branch.BaseId, again.BaseId);
            Assert.Equal(2, s.ListVolumes().Count);
            Assert.Equal(atK, await Read(s, v));
            Assert.Equal(aBytes, await Read(s, branch.BaseId));
            Assert.True((await s.Streams.ApplyAsync(await Stream(c, v, k))).Ok);
            Assert.Equal(cBytes, await Read(s, v));
        }
    }

    [Fact]
    public async Task Compaction_after_a_split_keeps_the_branch_and_the_rewound_volume_intact()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        var (v, k, _) = await SharedHistory(ta, tc);
        await using var c = tc.Open();
        var a = ta.Open();
        try
        {
            await Diverge(a, c, v);
            var aBytes = await Read(a, v);
            var branch = await a.SplitForkAsync(v, k);
            Assert.True((await a.Streams.ApplyAsync(await Stream(c, v, k))).Ok);
            var cBytes = await Read(c, v);
            // Writes to the (writable) branch close the current segment, so every segment written so far can be compacted.
            for (var off = 896 << 10; off < VolumeSize; off += 64 << 10)
            {
                var d = TempLog.Pattern(64 << 10, off);
                await a.WriteAsync(branch.BaseId, off, d);
                d.CopyTo(aBytes, off);
            }
            // The first segments hold rewritten (dead) copies and the one live copy both the branch and the volume use.
            var result = await a.CompactAsync();
            Assert.True(result.SegmentsCompacted > 0, "nothing was compacted");
            Assert.True(result.BytesCopied > 0, "no live data was copied");
            Assert.Equal(aBytes, await Read(a, branch.BaseId));
            Assert.Equal(cBytes, await Read(a, v));
            // Keep writing (and compacting) until the log wraps and the freed segments are written over: reads that
            // still pointed at the old copies would now fail or differ.
            var segments = a.Usage.TotalSegments;
            for (var round = 0; round < 2 * segments; round++)
            {
                var d = TempLog.Pattern(128 << 10, 1000 + round);
                await a.WriteAsync(branch.BaseId, 896 << 10, d);
                d.CopyTo(aBytes, 896 << 10);
                if (round % 8 == 7) await a.CompactAsync();
            }
            Assert.Equal(aBytes, await Read(a, branch.BaseId));
            Assert.Equal(cBytes, await Read(a, v));
            await a.DisposeAsync();
            a = ta.Open();
            Assert.Equal(aBytes, await Read(a, branch.BaseId));
            Assert.Equal(cBytes, await Read(a, v));
        }
        finally { await a.DisposeAsync(); }
    }

    [Fact]
    public async Task A_split_of_a_branch_keeps_reading_through_to_its_frozen_parent()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        Id160 b;
        long k;
        byte[] atK;
        await using (var a0 = ta.Open())
        {
            var src = (await a0.CreateVolumeAsync(VolumeSize, VolumeMode.Async, [])).BaseId;
            await a0.WriteAsync(src, 0, TempLog.Pattern(VolumeSize, 1));
            b = (await a0.BranchAsync(a0.GetVolume(src)!.CurrentVersion)).BaseId;
            await a0.WriteAsync(src, 0, TempLog.Pattern(64 << 10, 2)); // the source moves on; the branch must not see it
            await a0.WriteAsync(b, 128 << 10, TempLog.Pattern(8192, 3));
            await a0.WriteZeroesAsync(b, 256 << 10, 16384);
            k = a0.GetVolume(b)!.Lsn;
            atK = await Read(a0, b);
        }
        File.WriteAllBytes(tc.Path, ta.ReadAll());
        File.Copy(ta.Path + ".keys", tc.Path + ".keys");
        await using var c = tc.Open();
        await using var a = ta.Open();
        // A's suffix overwrites parent data and un-zeroes the zeroed range; C's suffix writes elsewhere.
        await a.WriteAsync(b, 0, TempLog.Pattern(8192, 4));
        await a.WriteAsync(b, 256 << 10, TempLog.Pattern(4096, 5));
        await c.WriteAsync(b, 512 << 10, TempLog.Pattern(4096, 6));
        var aBytes = await Read(a, b);

        var kept = await a.SplitForkAsync(b, k);
        Assert.Equal(aBytes, await Read(a, kept.BaseId));
        Assert.Equal(atK, await Read(a, b));
        Assert.True((await a.Streams.ApplyAsync(await Stream(c, b, k))).Ok);
        Assert.Equal(await Read(c, b), await Read(a, b));
    }

    [Fact]
    public async Task A_following_stream_of_a_volume_ends_when_a_split_rewinds_it()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        var (v, k, _) = await SharedHistory(ta, tc);
        await using var c = tc.Open();
        await using var a = ta.Open();
        await Diverge(a, c, v);
        var total = (await Stream(a, v, 0)).Length;
        var pipe = new System.IO.Pipelines.Pipe();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var sending = a.Streams.StreamAsync(v, 0, pipe.Writer.AsStream(), follow: true, cts.Token);
        long received = 0;
        while (received < total)
        {
            var r = await pipe.Reader.ReadAsync(cts.Token);
            received += r.Buffer.Length;
            pipe.Reader.AdvanceTo(r.Buffer.End);
        }
        Assert.False(sending.IsCompleted);
        await a.SplitForkAsync(v, k);
        // The follower sees the stream end (it then resubscribes and finds the fork), not a wait for lsns that never come.
        await sending.WaitAsync(cts.Token);
    }

    [Fact]
    public async Task A_split_that_keeps_nothing_out_of_range_is_refused_and_changes_nothing()
    {
        using var ta = new TempLog();
        await using var a = ta.Open();
        var v = (await a.CreateVolumeAsync(VolumeSize, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(4096, 1));
        var head = a.GetVolume(v)!;
        await Assert.ThrowsAsync<InvalidRangeException>(() => a.SplitForkAsync(v, head.Lsn));
        await Assert.ThrowsAsync<InvalidRangeException>(() => a.SplitForkAsync(v, 0));
        await Assert.ThrowsAsync<VolumeNotFoundException>(() => a.SplitForkAsync(Id160.Random(), 1));
        Assert.Equal(head, a.GetVolume(v));
        Assert.True(a.IsWritable(v));
        Assert.Single(a.ListVolumes());
    }
    [Fact]
    public async Task A_version_is_known_held_at_its_lsn_after_compaction_and_a_copy_kept_as_a_branch_is_kept_once()
    {
        using var t = new TempLog();
        await using var s = t.Open(size: 24 << 20, segment: 256 << 10);
        var v = (await s.CreateVolumeAsync(VolumeSize, VolumeMode.Async, [])).BaseId;
        var early = new List<(long Lsn, Id160 Version)>();
        for (var round = 0; round < 4; round++)
            for (var off = 0; off < VolumeSize; off += 64 << 10)
            {
                await s.WriteAsync(v, off, TempLog.Pattern(64 << 10, round * 100 + off / 4096));
                if (round == 0) early.Add((s.GetVolume(v)!.Lsn, s.GetVolume(v)!.CurrentVersion));
            }
        var (lsn, version) = early[2];
        Assert.True(s.HoldsVersionAt(v, lsn, version), "from the entry's header");
        Assert.False(s.HoldsVersionAt(v, lsn, early[3].Version));
        Assert.True((await s.CompactAsync()).SegmentsCompacted > 0, "nothing was compacted");
        Assert.Throws<VersionCompactedException>(() => s.VersionAt(v, lsn));
        // The header is gone; the lsn table's version map still tells which version was at that lsn.
        Assert.True(s.HoldsVersionAt(v, lsn, version));
        Assert.False(s.HoldsVersionAt(v, lsn, early[3].Version));
        Assert.False(s.HoldsVersionAt(v, lsn + 1, version));
        Assert.False(s.HoldsVersionAt(v, s.GetVolume(v)!.Lsn + 1, version));
        Assert.False(s.HoldsVersionAt(Id160.Random(), lsn, version));

        var before = await Read(s, v);
        var head = s.GetVolume(v)!.CurrentVersion;
        var branch = await s.KeepAsBranchAsync(v);
        Assert.Equal(head, branch.BranchedFrom);
        Assert.Equal(before, await Read(s, branch.BaseId));
        // Asked again (a resync that failed after it): the same branch, not a second one.
        Assert.Equal(branch.BaseId, (await s.KeepAsBranchAsync(v)).BaseId);
        Assert.Equal(2, s.ListVolumes().Count);
    }
}
