// Version streams: encode from one store and apply to another (identical heads and bytes), refusal of a damaged or
// forked stream at the bad entry with the entries before it kept, live following, and compacted history.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using CloudFs.Tests.Support;

namespace CloudFs.Tests.Engine;

public sealed class StreamTests
{
    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    private static async Task<byte[]> StreamOf(LogStore s, Id160 v)
    {
        var ms = new MemoryStream();
        await s.Streams.StreamAsync(v, 0, ms, follow: false);
        return ms.ToArray();
    }

    /// <summary>A volume with a creation, data (some blocks zero), a zero entry and a large write: 5 entries.</summary>
    private static async Task<Id160> Populate(LogStore s)
    {
        var v = (await s.CreateVolumeAsync(4 << 20, VolumeMode.Sync, [Id160.Random(), Id160.Random()])).BaseId;
        var a = TempLog.Pattern(16 << 10, 1);
        a.AsSpan(4096, 1024).Clear();
        await s.WriteAsync(v, 0, a);
        await s.WriteZeroesAsync(v, 8192, 4096);
        await s.WriteAsync(v, 1 << 20, TempLog.Pattern(1 << 20, 2));
        await s.WriteAsync(v, 512, TempLog.Pattern(512, 3), durable: true);
        return v;
    }

    [Fact]
    public async Task A_stream_that_creates_a_volume_is_refused_unless_it_is_an_import_and_a_held_volumes_entries_are_not()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open(size: 32 << 20, segment: 1 << 20);
        await using var b = tb.Open(size: 32 << 20, segment: 1 << 20);
        var v = await Populate(a);
        var whole = new MemoryStream();
        await a.Streams.StreamAsync(v, 0, whole, follow: false);

        var refused = await b.Streams.ApplyAsync(new MemoryStream(whole.ToArray()), import: false);
        Assert.True(refused.IsRefused);
        Assert.Contains("is an import", refused.Error);
        Assert.Equal(0, refused.Applied);
        Assert.Null(b.GetVolume(v));

        Assert.True((await b.Streams.ApplyAsync(new MemoryStream(whole.ToArray()), import: true)).Ok);
        // Once held, its later entries need no import.
        await a.WriteAsync(v, 0, TempLog.Pattern(4096, 9));
        var tail = new MemoryStream();
        await a.Streams.StreamAsync(b.GetVolume(v)!.CurrentVersion, tail, follow: false);
        tail.Position = 0;
        var more = await b.Streams.ApplyAsync(tail, import: false);
        Assert.True(more.Ok, more.Error);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
    }

    [Fact]
    public async Task A_stream_applied_to_another_store_gives_identical_heads_and_bytes()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open(size: 32 << 20, segment: 1 << 20);
        await using var b = tb.Open(size: 32 << 20, segment: 1 << 20);
        var v = await Populate(a);
        var ms = new MemoryStream();
        await a.Streams.StreamAsync(v, 0, ms, follow: false);
        ms.Position = 0;
        var result = await b.Streams.ApplyAsync(ms);
        Assert.True(result.Ok, result.Error);
        Assert.Equal(a.GetVolume(v)!.Lsn, result.Applied);
        var ia = a.GetVolume(v)!;
        var ib = b.GetVolume(v)!;
        Assert.Equal(ia with { IsWritable = false }, ib with { Replicas = ia.Replicas });
        Assert.Equal(ia.Replicas, ib.Replicas);
        Assert.False(ib.IsWritable);
        Assert.Equal(await Read(a, v, 0, 4 << 20), await Read(b, v, 0, 4 << 20));
        await Assert.ThrowsAsync<NotPrimaryException>(async () => await b.WriteAsync(v, 0, new byte[512]));

        // The stream after a version carries exactly the later entries, and applying it again is harmless.
        var mid = a.ReadHeaders(v, 3, 3, 1)[0].Version;
        var tail = new MemoryStream();
        await a.Streams.StreamAsync(mid, tail, follow: false);
        tail.Position = 0;
        var again = await b.Streams.ApplyAsync(tail);
        Assert.True(again.Ok, again.Error);
        Assert.Equal(0, again.Applied);

        // After reopening, the receiver still holds it all (applied entries are durable and replayed).
        await b.DisposeAsync();
        await using var b2 = tb.Open(size: 32 << 20, segment: 1 << 20);
        Assert.Equal(ia.CurrentVersion, b2.GetVolume(v)!.CurrentVersion);
        Assert.Equal(await Read(a, v, 0, 4 << 20), await Read(b2, v, 0, 4 << 20));
    }

    [Fact]
    public async Task A_stream_with_one_flipped_byte_is_refused_at_that_entry_and_earlier_entries_stay()
    {
        using var ta = new TempLog();
        await using var a = ta.Open(size: 32 << 20, segment: 1 << 20);
        var v = await Populate(a);
        var ms = new MemoryStream();
        await a.Streams.StreamAsync(v, 0, ms, follow: false);
        var bytes = ms.ToArray();
        var headers = a.ReadHeaders(v, 1, 10, 10);
        // Entry sizes: create 512, data (31 stored blocks) 512+31*512, zero 512, 1 MiB entry, 512-byte write.
        var starts = new List<int> { 0 };
        var pos = 0;
        while (pos < bytes.Length)
        {
            Assert.True(EntryHeader.TryParse(bytes.AsSpan(pos), out var h, out _));
            pos += h.TotalBytes;
            starts.Add(pos);
        }
        Assert.Equal(headers.Count + 1, starts.Count);
        foreach (var (entry, offsetInEntry) in new[] { (3, 600), (1, EntryHeader.OffDigest), (4, 100) })
        {
            using var tb = new TempLog();
            await using var b = tb.Open(size: 32 << 20, segment: 1 << 20);
            var bad = (byte[])bytes.Clone();
            bad[starts[entry] + offsetInEntry] ^= 0x10;
            var r = await b.Streams.ApplyAsync(new MemoryStream(bad));
            Assert.False(r.Ok);
            Assert.Equal(entry, r.Applied);
            Assert.Contains($"entry {entry}", r.Error);
            Assert.Equal(entry, b.GetVolume(v)!.Lsn);
            Assert.Equal(headers[entry - 1].Version, b.GetVolume(v)!.CurrentVersion);
        }
    }

    [Fact]
    public async Task A_diverging_stream_is_reported_as_a_fork()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        using var tc = new TempLog();
        Id160 v;
        await using (var a = ta.Open()) v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        // A copy of the primary's device and keys: two primaries that both extend lsn 2 differently.
        File.WriteAllBytes(tc.Path, ta.ReadAll());
        File.Copy(ta.Path + ".keys", tc.Path + ".keys");
        await using var a1 = ta.Open();
        await using var a2 = tc.Open();
        await a1.WriteAsync(v, 0, TempLog.Pattern(512, 1));
        await a2.WriteAsync(v, 0, TempLog.Pattern(512, 2));
        await using var b = tb.Open();
        var s1 = new MemoryStream();
        await a1.Streams.StreamAsync(v, 0, s1, false);
        s1.Position = 0;
        Assert.True((await b.Streams.ApplyAsync(s1)).Ok);
        var s2 = new MemoryStream();
        await a2.Streams.StreamAsync(v, 0, s2, false);
        s2.Position = 0;
        var r = await b.Streams.ApplyAsync(s2);
        Assert.True(r.IsFork);
        Assert.Contains("fork", r.Error);
        Assert.Equal(a1.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
    }

    [Fact]
    public async Task A_following_stream_delivers_new_entries_as_they_are_appended()
    {
        using var ta = new TempLog();
        using var tb = new TempLog();
        await using var a = ta.Open();
        await using var b = tb.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [])).BaseId;
        var pipe = new System.IO.Pipelines.Pipe();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var sending = a.Streams.StreamAsync(v, 0, pipe.Writer.AsStream(), follow: true, cts.Token);
        var applying = b.Streams.ApplyAsync(pipe.Reader.AsStream(), cts.Token);
        AppendResult last = default;
        for (var i = 0; i < 10; i++) last = await a.WriteAsync(v, i * 512L, TempLog.Pattern(512, i));
        await Eventually.Until(() => b.GetVolume(v)?.CurrentVersion == last.Version, TimeSpan.FromSeconds(30), "the follower caught up");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);
        pipe.Writer.Complete();
        await applying.ContinueWith(_ => { });
        Assert.Equal(await Read(a, v, 0, 8192), await Read(b, v, 0, 8192));
    }

    [Fact]
    public async Task An_apply_of_a_source_that_breaks_keeps_what_arrived_and_says_why_it_stopped()
    {
        // POST /log and `cloudfs apply` read a request body that can break like a live feed's connection: the same
        // answer as the live apply, not an exception that loses which entries were applied.
        using var ta = new TempLog();
        await using var a = ta.Open(size: 32 << 20, segment: 1 << 20);
        var v = await Populate(a);
        var broken = new BreakingStream(await StreamOf(a, v));
        using var tb = new TempLog();
        await using var b = tb.Open(size: 32 << 20, segment: 1 << 20);
        var r = await b.Streams.ApplyAsync(broken);
        var entries = a.GetVolume(v)!.Lsn;
        Assert.False(r.Ok);
        Assert.False(r.IsFork);
        Assert.Equal(entries, r.Applied);
        Assert.Contains($"entry {entries}: the stream failed: connection reset by peer", r.Error);
        Assert.Equal(a.GetVolume(v)!.CurrentVersion, b.GetVolume(v)!.CurrentVersion);
    }

    [Fact]
    public async Task Streaming_from_an_unknown_version_is_refused()
    {
        using var ta = new TempLog();
        await using var a = ta.Open();
        await Assert.ThrowsAsync<UnknownVersionException>(() => a.Streams.StreamAsync(Id160.Random(), new MemoryStream(), false));
    }
}
