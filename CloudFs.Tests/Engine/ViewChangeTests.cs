// Failover in the engine: secret shares sealed for the replica hosts, a replica taking over with a majority of them
// (view-change entry under a new secret), the stale primary fenced off, and all of it surviving restarts.
using CloudFs.BlockDevice;

// The engine and its tests run on Linux only: the Unix file modes are always available.
#pragma warning disable CA1416

namespace CloudFs.Tests.Engine;

public sealed class ViewChangeTests
{
    private static string KeyFile(TempLog t) => t.Path + ".keys";

    /// <summary>Shares stored, more written on A and streamed, then B takes over with C's released share.</summary>
    private static async Task<(long CommonLsn, VolumeInfo Taken)> FailOverToB(ThreeHosts h)
    {
        h.ShareSecret();
        var before = h.A.GetVolume(h.Volume)!.Lsn;
        await h.A.WriteAsync(h.Volume, 65536, TempLog.Pattern(4096, 2), durable: true);
        await ThreeHosts.Ship(h.A, h.Volume, before, h.B);
        await ThreeHosts.Ship(h.A, h.Volume, before, h.C);
        var common = h.A.GetVolume(h.Volume)!.Lsn;
        var fromC = h.C.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B));
        var taken = await h.B.Ownership.TakeOverAsync(h.Volume, [fromC], [h.B.HostId, h.C.HostId, h.A.HostId]);
        return (common, taken);
    }

    [Fact]
    public async Task A_replica_takes_over_with_a_majority_of_shares_and_its_writes_replicate()
    {
        await using var h = await ThreeHosts.StartAsync();
        Assert.False(h.B.IsWritable(h.Volume));
        var (common, taken) = await FailOverToB(h);

        Assert.True(taken.IsWritable);
        Assert.True(h.B.IsWritable(h.Volume));
        Assert.Equal(common + 1, taken.Lsn);
        Assert.Equal(1, taken.ViewNumber);
        Assert.Equal(taken.CurrentVersion, taken.View);
        Assert.Equal([h.B.HostId, h.C.HostId, h.A.HostId], taken.Replicas);
        var header = h.B.ReadHeaders(h.Volume, common + 1, common + 1, 1)[0];
        Assert.Equal(EntryKind.ViewChange, header.Kind);
        Assert.Equal(0, header.Length);

        // B's writes stream to C, which takes the view change and stays a non-writer.
        var data = TempLog.Pattern(8192, 3);
        await h.B.WriteAsync(h.Volume, 4096, data, durable: true);
        var r = await ThreeHosts.Ship(h.B, h.Volume, common, h.C);
        Assert.Equal(2, r.Applied);
        var c = h.C.GetVolume(h.Volume)!;
        Assert.Equal(h.B.GetVolume(h.Volume)!.CurrentVersion, c.CurrentVersion);
        Assert.Equal(1, c.ViewNumber);
        Assert.Equal(taken.View, c.View);
        Assert.Equal(taken.Replicas, c.Replicas);
        Assert.False(c.IsWritable);
        Assert.Equal(await ThreeHosts.Read(h.B, h.Volume, 0, ThreeHosts.VolumeBytes), await ThreeHosts.Read(h.C, h.Volume, 0, ThreeHosts.VolumeBytes));

        // The old primary applies the new view from the common version: it is no longer the writer, durably.
        Assert.True(h.A.IsWritable(h.Volume));
        await ThreeHosts.Ship(h.B, h.Volume, common, h.A);
        Assert.False(h.A.IsWritable(h.Volume));
        Assert.Equal(1, h.A.GetVolume(h.Volume)!.ViewNumber);
        await Assert.ThrowsAsync<NotPrimaryException>(async () => await h.A.WriteAsync(h.Volume, 0, new byte[512]));
        Assert.DoesNotContain(h.Volume.ToString(), File.ReadAllLines(KeyFile(h.LogA)).Where(l => !l.StartsWith("share ")).Select(l => l.Split(' ')[0]));
        Assert.Equal(data, await ThreeHosts.Read(h.A, h.Volume, 4096, data.Length));
    }

    [Fact]
    public async Task The_writer_releases_the_share_of_its_own_position_and_a_replica_takes_over_with_it()
    {
        await using var h = await ThreeHosts.StartAsync();
        // As in the cluster: the replicas keep their shares, the writer keeps the secret and no share.
        h.B.Ownership.StoreShare(h.A.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.B)])[0]);
        Assert.Throws<CloudFsException>(() => h.C.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B)));

        // B's own share and the one A's position has: a majority of three (a writer whose device failed does this).
        var fromA = h.A.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B));
        var taken = await h.B.Ownership.TakeOverAsync(h.Volume, [fromA], [h.B.HostId, h.C.HostId, h.A.HostId]);
        Assert.True(taken.IsWritable);
        Assert.Equal(1, taken.ViewNumber);
    }

    [Fact]
    public async Task A_stale_primary_cannot_extend_the_chain_after_a_view_change()
    {
        await using var h = await ThreeHosts.StartAsync();
        var (common, _) = await FailOverToB(h);
        await ThreeHosts.Ship(h.B, h.Volume, common, h.C);
        var cHead = h.C.GetVolume(h.Volume)!.CurrentVersion;

        // A has not heard of the view change: it still holds the old secret and appends on the old chain...
        Assert.True(h.A.IsWritable(h.Volume));
        await h.A.WriteAsync(h.Volume, 0, TempLog.Pattern(512, 9), durable: true);

        // ...which the replicas that follow the new view refuse as a fork, changing nothing.
        var toC = await ThreeHosts.Ship(h.A, h.Volume, common, h.C, mustSucceed: false);
        Assert.False(toC.Ok);
        Assert.True(toC.IsFork, toC.Error);
        Assert.Equal(0, toC.Applied);
        Assert.Equal(cHead, h.C.GetVolume(h.Volume)!.CurrentVersion);
        var toB = await ThreeHosts.Ship(h.A, h.Volume, common, h.B, mustSucceed: false);
        Assert.True(toB.IsFork, toB.Error);
        Assert.True(h.B.IsWritable(h.Volume));
    }

    [Fact]
    public async Task Take_over_with_fewer_shares_than_a_majority_fails_and_appends_nothing()
    {
        await using var h = await ThreeHosts.StartAsync();
        h.ShareSecret();
        var before = h.B.GetVolume(h.Volume)!;

        // Only B's own share: below the threshold of 2.
        var e = await Assert.ThrowsAsync<CloudFsException>(() => h.B.Ownership.TakeOverAsync(h.Volume, [], [h.B.HostId, h.C.HostId]));
        Assert.Contains("share", e.Message);
        // A share released for another host (C) does not count for B.
        var forC = h.A.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.C));
        e = await Assert.ThrowsAsync<CloudFsException>(() => h.B.Ownership.TakeOverAsync(h.Volume, [forC], [h.B.HostId, h.C.HostId]));
        Assert.Contains("sealed for host", e.Message);

        var after = h.B.GetVolume(h.Volume)!;
        Assert.Equal(before, after);
        Assert.False(after.IsWritable);
        Assert.Equal(0, after.ViewNumber);
        Assert.DoesNotContain(File.ReadAllLines(KeyFile(h.LogB)), l => l.StartsWith(h.Volume.ToString()));
        // The non-writer cannot seal shares either.
        Assert.Throws<NotPrimaryException>(() => h.B.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.B)]));
    }

    [Fact]
    public async Task A_tampered_or_misdirected_share_is_refused_by_StoreShare_and_TakeOver()
    {
        await using var h = await ThreeHosts.StartAsync();
        h.ShareSecret();
        var keysBefore = File.ReadAllText(KeyFile(h.LogB));

        var fresh = h.A.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.A), ThreeHosts.Holder(h.B), ThreeHosts.Holder(h.C)]);
        var tampered = fresh[1] with { Payload = Flip(fresh[1].Payload, fresh[1].Payload.Length - 3) };
        var e = Assert.Throws<CloudFsException>(() => h.B.Ownership.StoreShare(tampered));
        Assert.Contains("does not open", e.Message);
        Assert.Throws<CloudFsException>(() => h.B.Ownership.StoreShare(fresh[1] with { View = Id160.Random() }));
        Assert.Throws<CloudFsException>(() => h.B.Ownership.StoreShare(fresh[1] with { Volume = Id160.Random() }));
        e = Assert.Throws<CloudFsException>(() => h.B.Ownership.StoreShare(fresh[2]));
        Assert.Contains("not for this host", e.Message);
        Assert.Throws<CloudFsException>(() => h.B.Ownership.StoreShare(fresh[1] with { Payload = fresh[1].Payload[..40] }));
        Assert.Equal(keysBefore, File.ReadAllText(KeyFile(h.LogB)));

        // TakeOver with C's released share damaged: refused, nothing appended; with the good one it works.
        var fromC = h.C.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B));
        var lsn = h.B.GetVolume(h.Volume)!.Lsn;
        e = await Assert.ThrowsAsync<CloudFsException>(() =>
            h.B.Ownership.TakeOverAsync(h.Volume, [fromC with { Payload = Flip(fromC.Payload, 70) }], [h.B.HostId, h.C.HostId, h.A.HostId]));
        Assert.Contains("does not open", e.Message);
        Assert.Equal(lsn, h.B.GetVolume(h.Volume)!.Lsn);
        Assert.False(h.B.IsWritable(h.Volume));
        var taken = await h.B.Ownership.TakeOverAsync(h.Volume, [fromC], [h.B.HostId, h.C.HostId, h.A.HostId]);
        Assert.True(taken.IsWritable);
    }

    [Fact]
    public async Task Shares_sealed_one_holder_at_a_time_combine_and_one_alone_is_never_enough()
    {
        await using var h = await ThreeHosts.StartAsync();
        // The primary seals for each replica separately (as it does when each one connects): the split is the same
        // every time (it is over the whole replica set, per view), so the shares combine ...
        var forB = Assert.Single(h.A.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.B)]));
        var forC = Assert.Single(h.A.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.C)]));
        var forBAgain = Assert.Single(h.A.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.B)]));
        h.B.Ownership.StoreShare(forB);
        h.C.Ownership.StoreShare(forC);
        // ... and a share sealed for one holder alone is not the whole secret: B cannot take over with its own.
        await Assert.ThrowsAsync<CloudFsException>(() => h.B.Ownership.TakeOverAsync(h.Volume, [], [h.B.HostId, h.C.HostId]));
        // A host outside the replica set gets no share at all.
        var stranger = Id160.Random();
        Assert.Throws<CloudFsException>(() => h.A.Ownership.SealShares(h.Volume, [new ShareHolder(stranger, ThreeHosts.Holder(h.B).PublicKey)]));
        h.B.Ownership.StoreShare(forBAgain);
        var taken = await h.B.Ownership.TakeOverAsync(h.Volume, [h.C.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B))], [h.B.HostId, h.C.HostId]);
        Assert.True(taken.IsWritable);
        Assert.Equal([h.B.HostId, h.C.HostId], taken.Replicas);
    }

    [Fact]
    public async Task After_a_view_change_old_shares_are_stale_until_the_new_primary_seals_its_own()
    {
        await using var h = await ThreeHosts.StartAsync();
        var oldShares = h.A.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.A), ThreeHosts.Holder(h.B), ThreeHosts.Holder(h.C)]);
        var (common, taken) = await FailOverToB(h);
        await ThreeHosts.Ship(h.B, h.Volume, common, h.C);

        // C's share belongs to the old view: it is not released, and an old-view share is not stored over it.
        var e = Assert.Throws<CloudFsException>(() => h.C.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B)));
        Assert.Contains("not for the current view", e.Message);
        e = Assert.Throws<CloudFsException>(() => h.C.Ownership.StoreShare(oldShares[2]));
        Assert.Contains("older than the current view", e.Message);
        // The old primary cannot seal anything any more once it follows the new view.
        await ThreeHosts.Ship(h.B, h.Volume, common, h.A);
        Assert.Throws<NotPrimaryException>(() => h.A.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.A)]));

        // The new primary's shares are for the new view; with them C can hand B's successor (A) its share.
        var fresh = h.B.Ownership.SealShares(h.Volume, [ThreeHosts.Holder(h.B), ThreeHosts.Holder(h.C), ThreeHosts.Holder(h.A)]);
        Assert.All(fresh, s => Assert.Equal(taken.View, s.View));
        foreach (var (store, share) in new[] { (h.B, fresh[0]), (h.C, fresh[1]), (h.A, fresh[2]) }) store.Ownership.StoreShare(share);
        var again = await h.A.Ownership.TakeOverAsync(h.Volume, [h.C.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.A))], [h.A.HostId, h.B.HostId, h.C.HostId]);
        Assert.True(again.IsWritable);
        Assert.Equal(2, again.ViewNumber);
        await ThreeHosts.Ship(h.A, h.Volume, taken.Lsn, h.B);
        Assert.False(h.B.IsWritable(h.Volume));
        Assert.Equal(again.CurrentVersion, h.B.GetVolume(h.Volume)!.CurrentVersion);
    }

    [Fact]
    public async Task Writability_and_view_survive_restarts_and_recovery_replays_the_view_change()
    {
        await using var h = await ThreeHosts.StartAsync();
        var hostKeyB = h.B.Ownership.HostPublicKey;
        var (common, taken) = await FailOverToB(h);
        await ThreeHosts.Ship(h.B, h.Volume, common, h.C);

        // B crashes right after the view change (no checkpoint): recovery replays the view-change entry.
        await h.ReopenAsync(1, crash: true);
        Assert.True(h.B.LastRecovery.EntriesReplayed >= taken.Lsn);
        var b = h.B.GetVolume(h.Volume)!;
        Assert.True(b.IsWritable);
        Assert.Equal(taken.CurrentVersion, b.CurrentVersion);
        Assert.Equal(1, b.ViewNumber);
        Assert.Equal(taken.View, b.View);
        Assert.Equal(taken.Replicas, b.Replicas);
        Assert.Equal(hostKeyB, h.B.Ownership.HostPublicKey);

        // After a checkpointed restart too, and the new primary's next write still replicates.
        await h.ReopenAsync(1);
        await h.ReopenAsync(2);
        Assert.True(h.B.LastRecovery.FromCheckpoint);
        var b2 = h.B.GetVolume(h.Volume)!;
        Assert.Equal(b, b2 with { Replicas = b.Replicas });
        Assert.Equal(b.Replicas, b2.Replicas);
        var c = h.C.GetVolume(h.Volume)!;
        Assert.False(c.IsWritable);
        Assert.Equal((1L, taken.View), (c.ViewNumber, c.View));
        await h.B.WriteAsync(h.Volume, 0, TempLog.Pattern(1024, 4), durable: true);
        await ThreeHosts.Ship(h.B, h.Volume, taken.Lsn, h.C);
        Assert.Equal(h.B.GetVolume(h.Volume)!.CurrentVersion, h.C.GetVolume(h.Volume)!.CurrentVersion);

        // A restarts with its stale secret put back into its key file after applying the new view: not writable.
        var staleKeys = File.ReadAllText(KeyFile(h.LogA));
        await ThreeHosts.Ship(h.B, h.Volume, common, h.A);
        await h.CloseAsync(0);
        File.WriteAllText(KeyFile(h.LogA), staleKeys);
        await h.OpenAsync(0);
        var a = h.A.GetVolume(h.Volume)!;
        Assert.False(a.IsWritable);
        Assert.Equal(1, a.ViewNumber);
        Assert.DoesNotContain(File.ReadAllLines(KeyFile(h.LogA)), l => l.StartsWith(h.Volume.ToString()));
    }

    [Fact]
    public async Task The_host_key_and_shares_are_kept_in_a_private_key_file_and_a_bad_line_is_refused()
    {
        await using var h = await ThreeHosts.StartAsync();
        h.ShareSecret();
        var key = h.C.Ownership.HostPublicKey;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyFile(h.LogC)));
        var text = File.ReadAllLines(KeyFile(h.LogC));
        Assert.Single(text, l => l.StartsWith("host-key "));
        Assert.Single(text, l => l.StartsWith($"share {h.Volume} {h.Volume} "));

        // The stored share survives a restart (C can still release it) and so does the host key.
        await h.ReopenAsync(2);
        Assert.Equal(key, h.C.Ownership.HostPublicKey);
        var released = h.C.Ownership.ReleaseShare(h.Volume, ThreeHosts.Holder(h.B));
        Assert.Equal(h.B.HostId, released.Host);

        await h.CloseAsync(2);
        File.AppendAllText(KeyFile(h.LogC), $"share {h.Volume} {h.Volume} 00ff\n");
        var e = Assert.Throws<DeviceException>(() => LogStore.Open(h.LogC.Options()));
        Assert.Contains("malformed", e.Message);
    }

    [Fact]
    public async Task A_writer_changes_its_replica_set_without_shares_and_a_single_replica_volume_needs_none()
    {
        using var t = new TempLog();
        await using var s = t.Open();
        var v = (await s.CreateVolumeAsync(1 << 20, VolumeMode.Async, [s.HostId])).BaseId;
        var other = Id160.Random();
        var info = await s.Ownership.TakeOverAsync(v, [], [s.HostId, other]);
        Assert.True(info.IsWritable);
        Assert.Equal((1L, 2L), (info.ViewNumber, info.Lsn));
        Assert.Equal([s.HostId, other], info.Replicas);
        await s.WriteAsync(v, 0, TempLog.Pattern(512, 5), durable: true);
        await Assert.ThrowsAsync<CloudFsException>(() => s.Ownership.TakeOverAsync(v, [], [other, s.HostId]));
    }

    private static byte[] Flip(byte[] b, int at)
    {
        var c = (byte[])b.Clone();
        c[at] ^= 0x10;
        return c;
    }
}
