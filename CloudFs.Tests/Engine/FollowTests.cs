// Live stream apply: durable progress while a followed stream stays open (each reported lsn is in a crash image of
// the replica's log), the same stop rule as ApplyAsync for a damaged stream, fork versus gap reporting, and VersionAt.
using System.IO.Pipelines;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using CloudFs.Tests.Support;

namespace CloudFs.Tests.Engine;

public sealed class FollowTests
{
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(30);

    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    /// <summary>The whole entries of a stream, as separate byte arrays.</summary>
    private static List<byte[]> Entries(byte[] stream)
    {
        var list = new List<byte[]>();
        for (var pos = 0; pos < stream.Length;)
        {
            Assert.True(EntryHeader.TryParse(stream.AsSpan(pos), out var h, out var err), err);
            list.Add(stream.AsSpan(pos, h.TotalBytes).ToArray());
            pos += h.TotalBytes;
        }
        return list;
    }

    private static async Task<byte[]> StreamBytes(LogStore s, Id160 v, long afterLsn = 0)
    {
        var ms = new MemoryStream();
        await s.Streams.StreamAsync(v, afterLsn, ms, follow: false);
        return ms.ToArray();
    }

    [Fact]
    public async Task Live_apply_reports_each_durable_lsn_while_the_followed_stream_stays_open()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        var images = Enumerable.Range(0, 3).Select(_ => new TempLog()).ToArray();
        try
        {
            await using var a = ta.Open();
            var b = tb.Open();
            var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [])).BaseId;
            var pipe = new Pipe();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var sending = a.Streams.StreamAsync(v, 0, pipe.Writer.AsStream(), follow: true, cts.Token);
            var progress = new List<ApplyProgress>();
            var imaged = new List<ApplyProgress>();
            var applying = b.Streams.ApplyLiveAsync(pipe.Reader.AsStream(), p =>
            {
                // A crash image taken right after the report: what the replica's disk holds at that moment.
                if (imaged.Count < images.Length && p.Lsn >= 2)
                {
                    DeviceImage.Copy(tb.Path, images[imaged.Count]);
                    imaged.Add(p);
                }
                lock (progress) progress.Add(p);
            }, cts.Token);

            await Eventually.Until(() => { lock (progress) return progress.Count > 0; }, PollTimeout, "the creation entry's progress");
            for (var i = 0; i < 6; i++)
            {
                var w = await a.WriteAsync(v, i * 4096L, TempLog.Pattern(4096, i), durable: true);
                await Eventually.Until(() => { lock (progress) return progress[^1].Lsn == w.Lsn; }, PollTimeout, $"progress for lsn {w.Lsn}");
                Assert.False(applying.IsCompleted, "the live apply ended while its source was open");
            }
            ApplyProgress[] seen;
            lock (progress) seen = progress.ToArray();
            Assert.Equal(7, seen[^1].Lsn);
            for (var i = 1; i < seen.Length; i++) Assert.True(seen[i].Lsn > seen[i - 1].Lsn, "progress went backwards");
            foreach (var p in seen)
            {
                Assert.Equal(v, p.Volume);
                Assert.Equal(a.VersionAt(v, p.Lsn), p.Version);
            }

            // Each crash image holds at least what had been reported when it was taken.
            Assert.Equal(images.Length, imaged.Count);
            for (var i = 0; i < images.Length; i++)
            {
                await using var img = TempLog.OpenRetrying(images[i].Options());
                Assert.True(img.GetVolume(v)!.Lsn >= imaged[i].Lsn, $"image {i} lost reported lsn {imaged[i].Lsn}");
                Assert.Equal(imaged[i].Version, img.VersionAt(v, imaged[i].Lsn));
            }

            // Cancelling ends it (what was applied stays durable); a crash right after loses nothing reported.
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => applying);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);
            b.CloseWithoutCheckpoint();
            await using var b2 = tb.Open();
            Assert.Equal(a.GetVolume(v)!.CurrentVersion, b2.GetVolume(v)!.CurrentVersion);
            Assert.Equal(await Read(a, v, 0, 32 << 10), await Read(b2, v, 0, 32 << 10));
        }
        finally
        {
            foreach (var i in images) i.Dispose();
        }
    }

    [Fact]
    public async Task Live_apply_reports_each_entry_once_written_and_entries_already_held_at_once()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [])).BaseId;
        for (var i = 0; i < 10; i++) await a.WriteAsync(v, i * 4096L, TempLog.Pattern(4096, 40 + i));
        var stream = await StreamBytes(a, v);
        await using var b = tb.Open();

        foreach (var pass in new[] { "new entries", "entries already held" })
        {
            var written = new List<ApplyProgress>();
            var durable = new List<ApplyProgress>();
            var r = await b.Streams.ApplyLiveAsync(new MemoryStream(stream), p => { lock (durable) durable.Add(p); }, p => { lock (written) written.Add(p); }, null);
            Assert.Null(r.Error);
            // Written reports run on the log's completion path and may trail the apply's end by a moment.
            await Eventually.Until(() => { lock (written) return written.Count == 11; }, PollTimeout, $"a written report per entry ({pass})");
            Assert.Equal(Enumerable.Range(1, 11).Select(l => (long)l), written.Select(p => p.Lsn).Order());
            Assert.All(written, p => Assert.Equal(a.VersionAt(v, p.Lsn), p.Version));
            Assert.Equal(11, durable[^1].Lsn);
        }
    }

    [Fact]
    public async Task Paced_live_apply_flushes_only_when_asked_or_when_an_entry_waited_its_max_delay()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Sync, [])).BaseId;
        for (var i = 0; i < 12; i++) await a.WriteAsync(v, i * 4096L, TempLog.Pattern(4096, 60 + i));
        var entries = Entries(await StreamBytes(a, v));
        await using var b = tb.Open();
        long written = 0, durable = 0;
        void Raise(ref long field, long lsn) { lock (entries) field = Math.Max(field, lsn); }
        long Read(ref long field) { lock (entries) return field; }

        var pipe = new Pipe();
        var flushes = new LiveFlushes(TimeSpan.FromHours(1));
        var applying = b.Streams.ApplyLiveAsync(pipe.Reader.AsStream(), p => Raise(ref durable, p.Lsn), p => Raise(ref written, p.Lsn), flushes);
        var syncsBefore = b.DeviceSyncs;
        // Fed one entry at a time, each written before the next: every pause is one an unpaced apply would flush at.
        for (var i = 0; i < 8; i++)
        {
            await pipe.Writer.WriteAsync(entries[i]);
            var lsn = i + 1;
            await Eventually.Until(() => Read(ref written) == lsn, PollTimeout, $"lsn {lsn} written");
        }
        Assert.Equal(syncsBefore, b.DeviceSyncs);
        Assert.Equal(0, Read(ref durable));

        // Asked for lsn 10 before it arrives: flushed as soon as it is admitted.
        flushes.Request(10);
        await pipe.Writer.WriteAsync(entries[8]);
        await pipe.Writer.WriteAsync(entries[9]);
        await Eventually.Until(() => Read(ref durable) >= 10, PollTimeout, "lsn 10 durable after the request");
        Assert.True(b.DeviceSyncs > syncsBefore);

        // Nothing asked: a pause still flushes once the oldest unflushed entry is MaxDelay old.
        await pipe.Writer.CompleteAsync();
        var r = await applying;
        Assert.Null(r.Error);
        using var tc = new TempLog();
        await using var c = tc.Open();
        var pipe2 = new Pipe();
        var durable2 = 0L;
        var applying2 = c.Streams.ApplyLiveAsync(pipe2.Reader.AsStream(), p => Raise(ref durable2, p.Lsn), null, new LiveFlushes(TimeSpan.FromMilliseconds(200)));
        foreach (var e in entries.Take(3)) await pipe2.Writer.WriteAsync(e);
        await Eventually.Until(() => Read(ref durable2) == 3, PollTimeout, "lsn 3 durable after the max delay, with the stream still open");
        await pipe2.Writer.CompleteAsync();
        Assert.Null((await applying2).Error);
    }

    [Fact]
    public async Task Live_apply_stops_at_a_flipped_byte_with_the_same_result_as_apply()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        using var tc = new TempLog();
        await using var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        for (var i = 0; i < 5; i++) await a.WriteAsync(v, i * 8192L, TempLog.Pattern(8192, 10 + i));
        var entries = Entries(await StreamBytes(a, v));
        Assert.Equal(6, entries.Count);
        entries[3][EntryHeader.Size + 100] ^= 0x04; // a data byte of entry 3 (lsn 4)

        await using var b = tb.Open();
        var pipe = new Pipe();
        var progress = new List<ApplyProgress>();
        var applying = b.Streams.ApplyLiveAsync(pipe.Reader.AsStream(), p => { lock (progress) progress.Add(p); });
        // Fed slowly: the good entries are reported durable before the bad one even arrives.
        for (var i = 0; i < 3; i++) await pipe.Writer.WriteAsync(entries[i]);
        await Eventually.Until(() => { lock (progress) return progress.Count > 0 && progress[^1].Lsn == 3; }, PollTimeout, "progress for lsn 3");
        for (var i = 3; i < entries.Count; i++) await pipe.Writer.WriteAsync(entries[i]);
        await pipe.Writer.CompleteAsync();
        var live = await applying;

        await using var c = tc.Open();
        var plain = await c.Streams.ApplyAsync(new MemoryStream(entries.SelectMany(e => e).ToArray()));
        Assert.False(live.Ok);
        Assert.Equal(plain, live);
        Assert.Equal(3, live.Applied);
        Assert.False(live.IsFork);
        Assert.Contains("entry 3 (lsn 4)", live.Error);
        Assert.Equal(3, b.GetVolume(v)!.Lsn);
        Assert.Equal(a.VersionAt(v, 3), b.GetVolume(v)!.CurrentVersion);
    }

    [Fact]
    public async Task Live_apply_of_a_source_that_breaks_keeps_what_arrived_and_says_why_it_stopped()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        for (var i = 0; i < 3; i++) await a.WriteAsync(v, i * 4096L, TempLog.Pattern(4096, 20 + i));
        await using var b = tb.Open();
        var reports = new List<ApplyProgress>();
        var r = await b.Streams.ApplyLiveAsync(new BreakingStream(await StreamBytes(a, v)), reports.Add);
        Assert.False(r.Ok);
        Assert.False(r.IsFork);
        Assert.Equal(4, r.Applied);
        Assert.Contains("connection reset by peer", r.Error);
        Assert.Equal(4, reports[^1].Lsn);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
    }

    [Fact]
    public async Task Live_apply_reports_a_fork_for_a_conflicting_chain_but_not_for_a_gap()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        using var tc = new TempLog();
        using var td = new TempLog();
        Id160 v;
        await using (var a0 = ta.Open()) v = (await a0.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        // A copy of the primary's device and keys: two primaries that extend lsn 2 differently.
        File.WriteAllBytes(tc.Path, ta.ReadAll());
        File.Copy(ta.Path + ".keys", tc.Path + ".keys");
        await using var a = ta.Open();
        await using var c = tc.Open();
        await a.WriteAsync(v, 0, TempLog.Pattern(512, 1));
        await a.WriteAsync(v, 512, TempLog.Pattern(512, 2));
        await c.WriteAsync(v, 0, TempLog.Pattern(512, 3));

        await using var b = tb.Open();
        Assert.True((await b.Streams.ApplyAsync(new MemoryStream(await StreamBytes(a, v)))).Ok);
        var reports = new List<ApplyProgress>();
        var forked = await b.Streams.ApplyLiveAsync(new MemoryStream(await StreamBytes(c, v)), reports.Add);
        Assert.True(forked.IsFork, forked.Error);
        Assert.Contains("fork", forked.Error);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
        Assert.Equal(new[] { new ApplyProgress(v, 1, v) }, reports);

        // A missing entry (lsn 3 after lsn 1) is a gap, not a conflict with what is held.
        var gap = Entries(await StreamBytes(a, v));
        await using var d = td.Open();
        var r = await d.Streams.ApplyLiveAsync(new MemoryStream(gap[0].Concat(gap[2]).ToArray()), _ => { });
        Assert.False(r.Ok);
        Assert.False(r.IsFork);
        Assert.Equal(1, r.Applied);
        Assert.Contains("does not follow", r.Error);
    }

    [Fact]
    public async Task VersionAt_agrees_with_the_versions_the_stream_carries()
    {
        using var ta = new TempLog();
        await using var a = ta.Open(size: 24 << 20);
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(64 << 10, 1));
        await a.WriteZeroesAsync(v, 4096, 8192);
        await a.WriteAsync(v, 512 << 10, TempLog.Pattern(512, 2));
        var entries = Entries(await StreamBytes(a, v));
        Assert.Equal(a.GetVolume(v)!.Lsn, entries.Count);
        foreach (var e in entries)
        {
            Assert.True(EntryHeader.TryParse(e, out var h, out _));
            Assert.Equal(h.Version, a.VersionAt(v, h.Lsn));
        }
        Assert.Throws<InvalidRangeException>(() => a.VersionAt(v, 0));
        Assert.Throws<InvalidRangeException>(() => a.VersionAt(v, entries.Count + 1));
        Assert.Throws<VolumeNotFoundException>(() => a.VersionAt(Id160.Random(), 1));

        // Overwrite everything a few times and compact: the early headers are gone, the head is still known.
        for (var round = 0; round < 3; round++)
            for (var off = 0; off < 1 << 20; off += 64 << 10)
                await a.WriteAsync(v, off, TempLog.Pattern(64 << 10, 100 * round + off / 4096));
        Assert.True((await a.CompactAsync()).SegmentsCompacted > 0, "nothing was compacted");
        Assert.Throws<VersionCompactedException>(() => a.VersionAt(v, 2));
        // A fork split needs every kept header: refused, and nothing changes (the volume stays writable).
        await Assert.ThrowsAsync<VersionCompactedException>(() => a.SplitForkAsync(v, 2));
        Assert.True(a.IsWritable(v));
        var head = a.GetVolume(v)!;
        Assert.Equal(head.CurrentVersion, a.VersionAt(v, head.Lsn));
    }
}
