// A volume's lifecycle in the engine: names in the creation entry, Trash/Restore/Resize as chain entries that replicas
// take from the stream and replay reapplies, Purge as a local entry that keeps a purged volume gone across restarts.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

#pragma warning disable CA1416

namespace CloudFs.Tests.Engine;

public sealed class LifecycleTests
{
    private static string KeyFile(TempLog t) => t.Path + ".keys";

    [Fact]
    public async Task Trash_and_restore_are_chain_entries_a_replica_takes_from_the_stream_and_both_keep_after_restarts()
    {
        await using var h = await ThreeHosts.StartAsync();
        var before = h.A.GetVolume(h.Volume)!.Lsn;

        var trashed = await h.A.TrashVolumeAsync(h.Volume);
        Assert.True(trashed.IsTrashed);
        Assert.Equal(before + 1, trashed.Lsn);
        Assert.Equal(EntryKind.Trash, h.A.ReadHeaders(h.Volume, before + 1, before + 1, 1)[0].Kind);
        // Nothing is written to a volume in the trash; a second rm is refused.
        await Assert.ThrowsAsync<VolumeInTrashException>(async () => await h.A.WriteAsync(h.Volume, 0, new byte[512]));
        await Assert.ThrowsAsync<VolumeInTrashException>(() => h.A.TrashVolumeAsync(h.Volume));
        await Assert.ThrowsAsync<VolumeInTrashException>(() => h.A.ResizeVolumeAsync(h.Volume, 2 * ThreeHosts.VolumeBytes, false));

        await ThreeHosts.Ship(h.A, h.Volume, before, h.B);
        var onB = h.B.GetVolume(h.Volume)!;
        Assert.Equal(trashed.TrashedAt, onB.TrashedAt);
        Assert.Equal(trashed.CurrentVersion, onB.CurrentVersion);

        // Replay (no checkpoint) and a checkpoint both keep the trash state.
        await h.ReopenAsync(1, crash: true);
        Assert.Equal(trashed.TrashedAt, h.B.GetVolume(h.Volume)!.TrashedAt);
        await h.ReopenAsync(1);
        Assert.Equal(trashed.TrashedAt, h.B.GetVolume(h.Volume)!.TrashedAt);

        var restored = await h.A.RestoreVolumeAsync(h.Volume);
        Assert.False(restored.IsTrashed);
        await Assert.ThrowsAsync<CloudFsException>(() => h.A.RestoreVolumeAsync(h.Volume));
        await h.A.WriteAsync(h.Volume, 0, TempLog.Pattern(512, 9), durable: true);
        await ThreeHosts.Ship(h.A, h.Volume, before + 1, h.B);
        Assert.False(h.B.GetVolume(h.Volume)!.IsTrashed);
        await h.ReopenAsync(0, crash: true);
        Assert.False(h.A.GetVolume(h.Volume)!.IsTrashed);
        Assert.Equal(TempLog.Pattern(512, 9), await ThreeHosts.Read(h.B, h.Volume, 0, 512));
    }

    [Fact]
    public async Task A_resize_grows_online_and_a_shrink_needs_allow_shrink_and_drops_what_lies_beyond()
    {
        await using var h = await ThreeHosts.StartAsync();
        var size = (long)ThreeHosts.VolumeBytes;
        var before = h.A.GetVolume(h.Volume)!.Lsn;
        var tail = TempLog.Pattern(4096, 5);
        await h.A.WriteAsync(h.Volume, size - 4096, tail, durable: true);

        // Grow: the new blocks read as zeros and take writes; the replica takes the new size from the stream.
        var grown = await h.A.ResizeVolumeAsync(h.Volume, 2 * size, allowShrink: false);
        Assert.Equal(2 * size, grown.SizeBytes);
        await h.A.WriteAsync(h.Volume, 2 * size - 512, TempLog.Pattern(512, 6), durable: true);
        await ThreeHosts.Ship(h.A, h.Volume, before, h.B);
        Assert.Equal(2 * size, h.B.GetVolume(h.Volume)!.SizeBytes);
        Assert.Equal(TempLog.Pattern(512, 6), await ThreeHosts.Read(h.B, h.Volume, 2 * size - 512, 512));

        // Shrink: refused without leave, nothing appended; with it, the data beyond the end is gone for good.
        var lsn = h.A.GetVolume(h.Volume)!.Lsn;
        await Assert.ThrowsAsync<InvalidRangeException>(() => h.A.ResizeVolumeAsync(h.Volume, size - 8192, allowShrink: false));
        Assert.Equal(lsn, h.A.GetVolume(h.Volume)!.Lsn);
        await Assert.ThrowsAsync<InvalidRangeException>(() => h.A.ResizeVolumeAsync(h.Volume, 1000, allowShrink: true));
        await h.A.ResizeVolumeAsync(h.Volume, size - 8192, allowShrink: true);
        await Assert.ThrowsAsync<InvalidRangeException>(async () => await h.A.WriteAsync(h.Volume, size - 4096, new byte[512]));
        await h.A.ResizeVolumeAsync(h.Volume, size, allowShrink: false);
        Assert.Equal(new byte[4096], await ThreeHosts.Read(h.A, h.Volume, size - 4096, 4096));

        await ThreeHosts.Ship(h.A, h.Volume, lsn, h.B);
        Assert.Equal(size, h.B.GetVolume(h.Volume)!.SizeBytes);
        Assert.Equal(new byte[4096], await ThreeHosts.Read(h.B, h.Volume, size - 4096, 4096));
        // Replay rebuilds the index and size from the entries alone.
        await h.ReopenAsync(1, crash: true);
        Assert.Equal(size, h.B.GetVolume(h.Volume)!.SizeBytes);
        Assert.Equal(new byte[4096], await ThreeHosts.Read(h.B, h.Volume, size - 4096, 4096));
        Assert.Equal(TempLog.Pattern(8192, 1), await ThreeHosts.Read(h.B, h.Volume, 0, 8192));
    }

    [Fact]
    public async Task A_name_is_kept_in_the_creation_entry_streamed_with_it_and_survives_restarts()
    {
        using var la = new TempLog();
        using var lb = new TempLog();
        await using var a = la.Open();
        var b = lb.Open();
        var v = await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [a.HostId, b.HostId], name: "db-01");
        Assert.Equal("db-01", v.Name);
        Assert.Equal(v.BaseId, v.CurrentVersion);
        await ThreeHosts.Ship(a, v.BaseId, 0, b);
        Assert.Equal("db-01", b.GetVolume(v.BaseId)!.Name);
        b.CloseWithoutCheckpoint();
        b = TempLog.OpenRetrying(lb.Options());
        Assert.Equal("db-01", b.GetVolume(v.BaseId)!.Name);
        await b.DisposeAsync();
        b = TempLog.OpenRetrying(lb.Options());
        Assert.Equal("db-01", b.GetVolume(v.BaseId)!.Name);
        await b.DisposeAsync();

        await Assert.ThrowsAsync<InvalidRangeException>(() => a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [a.HostId], name: "bad name"));
        await Assert.ThrowsAsync<InvalidRangeException>(() => a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [a.HostId], name: new string('x', 41)));
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("db", true)]
    [InlineData("db.prod-2_x", true)]
    [InlineData("-db", false)]
    [InlineData("d b", false)]
    [InlineData("é", false)]
    [InlineData("0123456789abcdef0123456789abcdef01234567", false)]
    [InlineData("0123456789abcdef0123456789abcdef0123456", true)]
    public void Volume_names_are_short_plain_and_never_look_like_an_id(string name, bool valid) =>
        Assert.Equal(valid, VolumeName.Check(name) is null);

    [Fact]
    public async Task Purge_drops_only_a_volume_in_the_trash_and_it_stays_gone_after_replay_and_after_a_checkpoint()
    {
        await using var h = await ThreeHosts.StartAsync();
        await Assert.ThrowsAsync<CloudFsException>(() => h.A.PurgeVolumeAsync(h.Volume));
        Assert.NotNull(h.A.GetVolume(h.Volume));

        var before = h.A.GetVolume(h.Volume)!.Lsn;
        await h.A.TrashVolumeAsync(h.Volume);
        await ThreeHosts.Ship(h.A, h.Volume, before, h.B);
        await h.A.PurgeVolumeAsync(h.Volume);
        Assert.Null(h.A.GetVolume(h.Volume));
        Assert.DoesNotContain(File.ReadAllLines(KeyFile(h.LogA)), l => l.Contains(h.Volume.ToString()));
        await Assert.ThrowsAsync<VolumeNotFoundException>(() => h.A.PurgeVolumeAsync(h.Volume));
        // The purge is local: B still holds its copy (in the trash) until it purges too.
        Assert.True(h.B.GetVolume(h.Volume)!.IsTrashed);

        await h.ReopenAsync(0, crash: true);
        Assert.Null(h.A.GetVolume(h.Volume));
        await h.ReopenAsync(0);
        Assert.Null(h.A.GetVolume(h.Volume));

        // B: a checkpoint holding the volume, then the purge, then a crash: replay drops it again.
        await h.B.Checkpoints.WriteAsync();
        await h.B.PurgeVolumeAsync(h.Volume);
        await h.ReopenAsync(1, crash: true);
        Assert.Null(h.B.GetVolume(h.Volume));
        Assert.Empty(h.B.ListVolumes());
    }

    [Fact]
    public async Task A_full_resync_carries_the_name_size_and_trash_state()
    {
        using var la = new TempLog();
        using var lb = new TempLog();
        await using var a = la.Open();
        await using var b = lb.Open();
        var v = (await a.CreateVolumeAsync(1 << 20, VolumeMode.Async, [a.HostId, b.HostId], name: "web")).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(8192, 3), durable: true);
        await a.ResizeVolumeAsync(v, 2 << 20, allowShrink: false);
        var trashed = await a.TrashVolumeAsync(v);

        var c = await a.Resync.ReadAsync(v, Id160.Zero, 0, 1 << 20, a.MaxBlocksPerEntry);
        var progress = await b.Resync.ApplyAsync(c.Data);
        while (!c.Complete)
        {
            c = await a.Resync.ReadAsync(v, c.Transfer, c.NextBlock, 1 << 20, a.MaxBlocksPerEntry);
            progress = await b.Resync.ApplyAsync(c.Data);
        }
        Assert.True(progress.Committed);
        var got = b.GetVolume(v)!;
        Assert.Equal("web", got.Name);
        Assert.Equal(2 << 20, got.SizeBytes);
        Assert.Equal(trashed.TrashedAt, got.TrashedAt);
        Assert.Equal(TempLog.Pattern(8192, 3), await ThreeHosts.Read(b, v, 0, 8192));
    }

    [Fact]
    public void A_checkpoint_keeps_names_and_trash_times_and_one_without_the_lifecycle_section_reads_as_neither()
    {
        var named = Id160.Random();
        var plain = Id160.Random();
        VolumeCheckpoint Volume(Id160 id) => new(id, 1 << 20, VolumeMode.Async, [Id160.Random()], null, 0, id, Id160.Zero, Id160.Zero, 1,
            [], [], 0, new ExtentIndex());
        var data = new CheckpointData(3, new WriterPosition(0, 5, 4096, 6), [SegmentState.Current], [5],
            [Volume(named) with { Name = "db-01", TrashedAtUnixMs = 1_700_000_000_000 }, Volume(plain)]);
        var bytes = Checkpoint.Encode(data, Guid.NewGuid()).WrittenSpan[Checkpoint.HeaderSize..].ToArray();

        var read = Checkpoint.Decode(3, bytes, 1).Volumes;
        Assert.Equal(("db-01", 1_700_000_000_000L), (read[0].Name, read[0].TrashedAtUnixMs));
        Assert.Equal(((string?)null, 0L), (read[1].Name, read[1].TrashedAtUnixMs));

        // The lifecycle section: i32 count + per volume (id, i64 trash time, u8 length, name); after it the
        // lost-entries section: i32 count + per volume (id, i32 run count, no runs here), the history section: i32
        // count + per volume (id, i32 protected count, u8 no base) and the changes section: i32 count + per volume
        // (id, i64 count 0).
        var section = 4 + (20 + 9 + 5) + (20 + 9);
        var lost = 4 + 2 * (20 + 4) + 4 + 2 * (20 + 5) + 4 + 2 * (20 + 8);
        var old = Checkpoint.Decode(3, bytes.AsSpan(0, bytes.Length - lost - section), 1).Volumes;
        Assert.All(old, v => Assert.Equal(((string?)null, 0L), (v.Name, v.TrashedAtUnixMs)));

        // A bad name is refused, not taken.
        bytes[bytes.Length - lost - (20 + 9) - 5] = (byte)' ';
        Assert.Throws<FormatException>(() => Checkpoint.Decode(3, bytes, 1));
    }

    [Fact]
    public void Lifecycle_payloads_refuse_what_is_malformed()
    {
        Span<byte> p = stackalloc byte[ResizePayload.Size];
        new ResizePayload(4096, 1 << 20).Encode(p);
        Assert.Equal(new ResizePayload(4096, 1 << 20), ResizePayload.Decode(p));
        Assert.Null(ResizePayload.Decode(p[..8]));
        new ResizePayload(1000, 1 << 20).Encode(p);
        Assert.Null(ResizePayload.Decode(p));
        new ResizePayload(0, 1 << 20).Encode(p);
        Assert.Null(ResizePayload.Decode(p));

        // A creation payload's name: absent (older entries), present, or refused when its length or bytes are wrong.
        Span<byte> c = stackalloc byte[256];
        var replicas = Enumerable.Range(0, CreatePayload.MaxReplicas).Select(_ => Id160.Random()).ToArray();
        var n = new CreatePayload(1 << 20, VolumeMode.Sync, replicas, Name: new string('n', VolumeName.MaxLength)).Encode(c);
        Assert.Equal(new string('n', VolumeName.MaxLength), CreatePayload.Decode(c[..n], false)!.Name);
        Assert.Null(CreatePayload.Decode(c[..(n - 1)], false));
        var m = new CreatePayload(1 << 20, VolumeMode.Sync, replicas).Encode(c);
        Assert.Null(CreatePayload.Decode(c[..m], false)!.Name);
        c[m] = 2; c[m + 1] = (byte)'a'; c[m + 2] = (byte)' ';
        Assert.Null(CreatePayload.Decode(c[..(m + 3)], false));
    }
}
