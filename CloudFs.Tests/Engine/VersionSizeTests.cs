// A version's size (LogStore.VersionSizes.cs): a version is read, diffed and branched at the size it had, not at the
// volume's size now. After a shrink an older version still reads its data past the new end at its old size; after a
// grow it still reports its old size; the history base keeps the size through compaction and a restart.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

public sealed class VersionSizeTests
{
    private const int K = 1024;
    private const int Size = 1 << 20;

    [Fact]
    public async Task After_a_shrink_an_older_version_reads_its_data_past_the_new_end_at_its_old_size()
    {
        using var t = new TempLog();
        await using var s = TempLog.OpenRetrying(t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.FromHours(1) });
        var v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
        await s.WriteAsync(v, 0, TempLog.Pattern(Size, 3));
        var before = s.GetVolume(v)!.CurrentVersion;
        await s.ResizeVolumeAsync(v, Size / 2, allowShrink: true);
        var shrunk = s.GetVolume(v)!.CurrentVersion;

        Assert.Equal(Size, await s.VersionSizeAsync(v, before));
        Assert.Equal(Size / 2, await s.VersionSizeAsync(v, shrunk));
        var old = new byte[Size];
        await s.ReadVersionAsync(v, before, 0, old);
        Assert.Equal(TempLog.Pattern(Size, 3), old);
        await Assert.ThrowsAsync<InvalidRangeException>(async () => await s.ReadVersionAsync(v, shrunk, Size / 2, new byte[4 * K]));
        // A branch of the older version starts at its size, with its data.
        var branch = await s.BranchAsync(before);
        Assert.Equal(Size, branch.SizeBytes);
        var read = new byte[Size];
        await s.ReadAsync(branch.BaseId, 0, read);
        Assert.Equal(TempLog.Pattern(Size, 3), read);
        // The diff covers the larger size: what the shrink dropped is reported, and both sizes.
        var diff = await s.Streams.ChangedBetweenAsync(v, before);
        Assert.Equal([new ChangedRange(Size / 2, Size / 2)], diff.Ranges);
        Assert.Equal((Size, Size / 2), (diff.FromSizeBytes, diff.ToSizeBytes));
    }

    [Fact]
    public async Task After_a_grow_an_older_version_keeps_its_old_size_through_compaction_and_a_restart()
    {
        using var t = new TempLog();
        var options = t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.FromHours(1) };
        Id160 v, before, grown;
        await using (var s = TempLog.OpenRetrying(options))
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, TempLog.Pattern(Size, 5));
            before = s.GetVolume(v)!.CurrentVersion;
            await s.ResizeVolumeAsync(v, 2 * Size, allowShrink: false);
            await s.WriteAsync(v, Size, TempLog.Pattern(64 * K, 6));
            grown = s.GetVolume(v)!.CurrentVersion;

            Assert.Equal(Size, await s.VersionSizeAsync(v, before));
            await Assert.ThrowsAsync<InvalidRangeException>(async () => await s.ReadVersionAsync(v, before, Size, new byte[4 * K]));
            Assert.Equal(Size, (await s.BranchAsync(before)).SizeBytes);
            var diff = await s.Streams.ChangedBetweenAsync(v, before, grown);
            Assert.Equal([new ChangedRange(Size, 64 * K)], diff.Ranges);
            Assert.Equal((Size, 2 * Size), (diff.FromSizeBytes, diff.ToSizeBytes));
        }
        await using (var s = TempLog.OpenRetrying(options))
        {
            Assert.Equal(Size, await s.VersionSizeAsync(v, before));
            Assert.Equal(2 * Size, await s.VersionSizeAsync(v, grown));
            var old = new byte[Size];
            await s.ReadVersionAsync(v, before, 0, old);
            Assert.Equal(TempLog.Pattern(Size, 5), old);
        }
    }

    [Fact]
    public async Task A_protected_version_keeps_its_size_in_the_history_base_over_compaction_and_a_restart()
    {
        using var t = new TempLog();
        var options = t.Options(size: 24 << 20) with { RetentionTime = TimeSpan.Zero };
        Id160 v, kept;
        await using (var s = TempLog.OpenRetrying(options))
        {
            v = (await s.CreateVolumeAsync(Size, VolumeMode.Async, [])).BaseId;
            await s.WriteAsync(v, 0, TempLog.Pattern(Size, 7));
            kept = s.GetVolume(v)!.CurrentVersion;
            await s.ProtectVersionAsync(v, kept, protect: true);
            await s.ResizeVolumeAsync(v, Size / 4, allowShrink: true);
            for (var round = 0; round < 3; round++)
                for (var off = 0; off < Size / 4; off += 64 * K)
                    await s.WriteAsync(v, off, TempLog.Pattern(64 * K, round * 100 + off / 4096));
            // The base moves to the protected version (a frozen index, with its size) and what is older goes.
            await s.CompactAsync();
            await s.CompactAsync();
            Assert.Equal(Size, await s.VersionSizeAsync(v, kept));
        }
        await using (var s = TempLog.OpenRetrying(options))
        {
            Assert.Equal(Size, await s.VersionSizeAsync(v, kept));
            var old = new byte[Size];
            await s.ReadVersionAsync(v, kept, 0, old);
            Assert.Equal(TempLog.Pattern(Size, 7), old);
            Assert.Equal(Size, (await s.BranchAsync(kept)).SizeBytes);
        }
    }
}
