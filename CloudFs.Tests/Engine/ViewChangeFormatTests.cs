// The formats around view changes: a forged view-change entry with a malformed payload, or one that is not the next
// view, is refused by every apply (POST /log's and a replica's feed) and changes nothing, and a checkpoint written
// before the view section existed still reads (as view 0).
using System.Buffers.Binary;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Tests.Engine;

public sealed class ViewChangeFormatTests
{
    [Fact]
    public async Task A_chained_view_change_entry_with_a_malformed_payload_is_refused_and_changes_nothing()
    {
        await using var h = await ThreeHosts.StartAsync();
        // Forge with the real secret (read from A's key file), so only the payload is wrong: no replica, view 0.
        var secret = Convert.FromHexString(File.ReadAllLines(h.LogA.Path + ".keys").Single(l => l.StartsWith(h.Volume.ToString())).Split(' ')[1]);
        var ms = new MemoryStream();
        await h.A.Streams.StreamAsync(h.Volume, 0, ms, follow: false);
        var all = ms.ToArray();
        var head = h.A.GetVolume(h.Volume)!;
        EntryHeader last = default;
        for (var at = 0; at < all.Length;)
        {
            Assert.True(EntryHeader.TryParse(all.AsSpan(at), out last, out _));
            at += last.TotalBytes;
        }
        Assert.Equal(head.Lsn, last.Lsn);
        var parentId = VersionChain.NextId(secret, last.Parent, last.Digest);

        var payload = new byte[9 + 20];
        BinaryPrimitives.WriteInt64LittleEndian(payload, 0);
        payload[8] = 1;
        using var buf = EntryCodec.BuildMetadata(EntryKind.ViewChange, h.Volume, 0, payload, 1);
        var id = VersionChain.NextId(secret, parentId, new Id160(buf.Span[EntryHeader.OffDigest..]));
        EntryCodec.SetChain(buf.Span, h.Volume, head.Lsn + 1, parentId, VersionChain.PublicOf(id));
        EntryCodec.Seal(buf.Span, 0);

        var before = h.C.GetVolume(h.Volume)!;
        var r = await h.C.Streams.ApplyAsync(new MemoryStream(buf.Span.ToArray()));
        Assert.False(r.Ok);
        Assert.Contains("malformed payload", r.Error);
        Assert.Equal(0, r.Applied);
        var after = h.C.GetVolume(h.Volume)!;
        Assert.Equal((before.Lsn, before.CurrentVersion, before.ViewNumber), (after.Lsn, after.CurrentVersion, after.ViewNumber));
    }

    /// <summary>A view change chained onto C's head with the writer A's real secret (read from its key file): only its payload can be wrong.</summary>
    private static async Task<byte[]> ChainedViewChangeAsync(ThreeHosts h, long viewNumber, Id160[] replicas)
    {
        var secret = Convert.FromHexString(File.ReadAllLines(h.LogA.Path + ".keys").Single(l => l.StartsWith(h.Volume.ToString())).Split(' ')[1]);
        var ms = new MemoryStream();
        await h.C.Streams.StreamAsync(h.Volume, 0, ms, follow: false);
        var all = ms.ToArray();
        EntryHeader last = default;
        for (var at = 0; at < all.Length; at += last.TotalBytes) Assert.True(EntryHeader.TryParse(all.AsSpan(at), out last, out _));
        var parentId = VersionChain.NextId(secret, last.Parent, last.Digest);
        var payload = new byte[9 + 20 * replicas.Length];
        BinaryPrimitives.WriteInt64LittleEndian(payload, viewNumber);
        payload[8] = (byte)replicas.Length;
        for (var i = 0; i < replicas.Length; i++) replicas[i].WriteTo(payload.AsSpan(9 + 20 * i));
        using var buf = EntryCodec.BuildMetadata(EntryKind.ViewChange, h.Volume, 0, payload, 1);
        var id = VersionChain.NextId(secret, parentId, new Id160(buf.Span[EntryHeader.OffDigest..]));
        EntryCodec.SetChain(buf.Span, h.Volume, last.Lsn + 1, parentId, VersionChain.PublicOf(id));
        EntryCodec.Seal(buf.Span, 0);
        return buf.Span.ToArray();
    }

    [Fact]
    public async Task A_streamed_view_change_that_is_not_the_next_view_is_refused_and_changes_nothing()
    {
        await using var h = await ThreeHosts.StartAsync();
        Assert.Equal(0, h.C.GetVolume(h.Volume)!.ViewNumber);
        // The first view change names view 1.
        var first = await h.C.Streams.ApplyAsync(new MemoryStream(await ChainedViewChangeAsync(h, 1, [h.A.HostId, h.B.HostId, h.C.HostId])));
        Assert.True(first.Ok, first.Error);
        var before = h.C.GetVolume(h.Volume)!;
        Assert.Equal(1, before.ViewNumber);
        var outsider = Id160.Random();
        // A view that repeats the current one, and views that skip ahead, all naming a replica set of one outsider.
        foreach (var view in new[] { 1, 3, long.MaxValue })
        {
            var r = await h.C.Streams.ApplyAsync(new MemoryStream(await ChainedViewChangeAsync(h, view, [outsider])));
            Assert.False(r.Ok);
            Assert.Contains($"the next view is {before.ViewNumber + 1}", r.Error);
            Assert.Equal(0, r.Applied);
            var after = h.C.GetVolume(h.Volume)!;
            Assert.Equal((before.Lsn, before.CurrentVersion, before.ViewNumber), (after.Lsn, after.CurrentVersion, after.ViewNumber));
            Assert.Equal(before.Replicas, after.Replicas);
        }
        // The next view is applied.
        var next = await h.C.Streams.ApplyAsync(new MemoryStream(await ChainedViewChangeAsync(h, before.ViewNumber + 1, [h.A.HostId, h.C.HostId])));
        Assert.True(next.Ok, next.Error);
        Assert.Equal(before.ViewNumber + 1, h.C.GetVolume(h.Volume)!.ViewNumber);
    }

    /// <summary>
    /// Entries chained onto <paramref name="onto"/>'s head with the writer A's real secret (read from its key file), so
    /// only what they say can be wrong: each a 4 KiB data entry (a view number of 0) or a view change naming that view
    /// and <paramref name="replicas"/>.
    /// </summary>
    private static async Task<byte[]> ChainedEntriesAsync(ThreeHosts h, LogStore onto, Id160[] replicas, params long[] views)
    {
        var secret = Convert.FromHexString(File.ReadAllLines(h.LogA.Path + ".keys").Single(l => l.StartsWith(h.Volume.ToString())).Split(' ')[1]);
        var ms = new MemoryStream();
        await onto.Streams.StreamAsync(h.Volume, 0, ms, follow: false);
        var all = ms.ToArray();
        EntryHeader last = default;
        for (var at = 0; at < all.Length; at += last.TotalBytes) Assert.True(EntryHeader.TryParse(all.AsSpan(at), out last, out _));
        var id = VersionChain.NextId(secret, last.Parent, last.Digest);
        var lsn = last.Lsn;
        var output = new MemoryStream();
        foreach (var view in views)
        {
            EntryBuffer buf;
            if (view == 0) buf = EntryCodec.BuildData(EntryKind.Data, h.Volume, 16, TempLog.Pattern(4096, (int)lsn), 1);
            else
            {
                var payload = new byte[9 + 20 * replicas.Length];
                BinaryPrimitives.WriteInt64LittleEndian(payload, view);
                payload[8] = (byte)replicas.Length;
                for (var i = 0; i < replicas.Length; i++) replicas[i].WriteTo(payload.AsSpan(9 + 20 * i));
                buf = EntryCodec.BuildMetadata(EntryKind.ViewChange, h.Volume, 0, payload, 1);
            }
            using (buf)
            {
                var parent = id;
                id = VersionChain.NextId(secret, parent, new Id160(buf.Span[EntryHeader.OffDigest..]));
                EntryCodec.SetChain(buf.Span, h.Volume, ++lsn, parent, VersionChain.PublicOf(id));
                EntryCodec.Seal(buf.Span, 0);
                output.Write(buf.Span);
            }
        }
        return output.ToArray();
    }

    [Fact]
    public async Task A_fed_view_change_that_skips_or_repeats_a_view_is_refused_with_everything_after_it_and_changes_nothing()
    {
        await using var h = await ThreeHosts.StartAsync();
        var outsider = Id160.Random();
        // A replica's feed (ApplyLiveAsync, as VolumeFollower applies it): a data entry, then a view change that skips
        // view 1, then more data. The first entry applies; the view change and what follows it do not.
        var before = h.C.GetVolume(h.Volume)!;
        var durable = new List<ApplyProgress>();
        var r = await h.C.Streams.ApplyLiveAsync(new MemoryStream(await ChainedEntriesAsync(h, h.C, [outsider], 0, 2, 0)), durable.Add);
        Assert.False(r.Ok);
        Assert.False(r.IsFork);
        Assert.Contains("names view 2, but the next view is 1", r.Error);
        Assert.Equal(1, r.Applied);
        var after = h.C.GetVolume(h.Volume)!;
        Assert.Equal(before.Lsn + 1, after.Lsn);
        Assert.Equal(before.Lsn + 1, durable.Max(p => p.Lsn));
        Assert.Equal((before.ViewNumber, before.View, before.Replicas), (after.ViewNumber, after.View, after.Replicas));
        // The refused entries were never written: the same lsns take the right entries after a restart too.
        await h.ReopenAsync(2, crash: true);
        Assert.Equal(after.CurrentVersion, h.C.GetVolume(h.Volume)!.CurrentVersion);

        // The next view (1) applies; then a view change that repeats it, or one far ahead, is refused.
        var next = await h.C.Streams.ApplyLiveAsync(new MemoryStream(await ChainedEntriesAsync(h, h.C, [h.A.HostId, h.C.HostId], 1)), _ => { });
        Assert.True(next.Ok, next.Error);
        var atOne = h.C.GetVolume(h.Volume)!;
        Assert.Equal(1, atOne.ViewNumber);
        foreach (var view in new[] { 1, 3, long.MaxValue })
        {
            var bad = await h.C.Streams.ApplyLiveAsync(new MemoryStream(await ChainedEntriesAsync(h, h.C, [outsider], view, 0)), _ => { });
            Assert.Contains($"names view {view}, but the next view is 2", bad.Error);
            Assert.Equal(0, bad.Applied);
            Assert.Equal(atOne, h.C.GetVolume(h.Volume)!);
        }
    }

    [Fact]
    public async Task A_writer_fed_a_view_change_that_is_not_the_next_view_stays_the_writer()
    {
        await using var h = await ThreeHosts.StartAsync();
        var before = h.A.GetVolume(h.Volume)!;
        var keys = File.ReadAllText(h.LogA.Path + ".keys");
        var r = await h.A.Streams.ApplyLiveAsync(new MemoryStream(await ChainedEntriesAsync(h, h.A, [Id160.Random()], 5)), _ => { });
        Assert.Contains("names view 5, but the next view is 1", r.Error);
        // Nothing changed: A did not step down (its secret is still in memory and in its key file) and still writes.
        Assert.Equal(before, h.A.GetVolume(h.Volume)!);
        Assert.True(h.A.IsWritable(h.Volume));
        Assert.Equal(keys, File.ReadAllText(h.LogA.Path + ".keys"));
        await h.A.WriteAsync(h.Volume, 0, TempLog.Pattern(512, 7), durable: true);
        Assert.Equal(before.Lsn + 1, h.A.GetVolume(h.Volume)!.Lsn);
    }

    [Fact]
    public void A_checkpoint_without_the_view_section_reads_as_view_zero_and_one_with_it_keeps_the_view()
    {
        var volume = Id160.Random();
        var view = Id160.Random();
        var data = new CheckpointData(7, new WriterPosition(0, 5, 4096, 6), [SegmentState.Current], [5],
        [
            new VolumeCheckpoint(volume, 1 << 20, VolumeMode.Sync, [Id160.Random()], null, 0, volume, Id160.Zero, Id160.Zero, 1,
                [], [], 0, new ExtentIndex()) { ViewNumber = 3, View = view },
        ]);
        var bytes = Checkpoint.Encode(data, Guid.NewGuid()).WrittenSpan[Checkpoint.HeaderSize..].ToArray();

        var read = Checkpoint.Decode(7, bytes, 1).Volumes.Single();
        Assert.Equal((3L, (Id160?)view), (read.ViewNumber, read.View));

        // The view section comes after the volumes: i32 count + per volume (id, i64 view number, view id); then the
        // damage section: i32 count + per volume (id, i32 range count, ranges); then the lifecycle section: i32 count
        // + per volume (id, i64 trash time, u8 name length, name); then the lost-entries section: i32 count + per volume
        // (id, i32 run count, runs); then the history section: i32 count + per volume (id, i32 protected count, u8 base
        // kind); then the changes section: i32 count + per volume (id, i64 count).
        const int damage = 4 + 24 + 4 + 29 + 4 + 24 + 4 + 25 + 4 + 28;
        var old = Checkpoint.Decode(7, bytes.AsSpan(0, bytes.Length - damage - (4 + 48)), 1).Volumes.Single();
        Assert.Equal((0L, (Id160?)null), (old.ViewNumber, old.View));

        // A view section that names another volume is refused.
        bytes[^(48 + damage)] ^= 1;
        Assert.Throws<FormatException>(() => Checkpoint.Decode(7, bytes, 1));
    }
}
