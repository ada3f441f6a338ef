// The chain claim (docs/WRITE-PATH.md): while a volume's writer holds it, the chain changes only through it; a stream,
// a resync or a fork split that would change it is refused before changing anything, and the owner keeps writing.
// A "twin" (the same log and key file copied) is a second writer of the same chain: what it appends is a valid suffix.
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Tests.Engine;

public sealed class ChainClaimTests
{
    private const int VolumeSize = 1 << 20;

    /// <summary>A volume with a few entries on <paramref name="ta"/>, its log and key file copied to <paramref name="tc"/>.</summary>
    private static async Task<(Id160 Volume, long K)> Twin(TempLog ta, TempLog tc)
    {
        await using var a = ta.Open();
        var v = (await a.CreateVolumeAsync(VolumeSize, VolumeMode.Async, [])).BaseId;
        for (var i = 0; i < 3; i++) await a.WriteAsync(v, i * 4096L, TempLog.Pattern(4096, i));
        var k = a.GetVolume(v)!.Lsn;
        await a.DisposeAsync();
        File.WriteAllBytes(tc.Path, ta.ReadAll());
        File.Copy(ta.Path + ".keys", tc.Path + ".keys");
        return (v, k);
    }

    private static async Task<MemoryStream> Stream(LogStore s, Id160 v, long afterLsn)
    {
        var ms = new MemoryStream();
        await s.Streams.StreamAsync(v, afterLsn, ms, follow: false);
        ms.Position = 0;
        return ms;
    }

    private static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    [Fact]
    public async Task A_stream_that_extends_a_claimed_chain_is_refused_and_the_owner_keeps_writing()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        var (v, k) = await Twin(ta, tc);
        await using var c = tc.Open();
        await using var a = ta.Open();
        await c.WriteAsync(v, 8192, TempLog.Pattern(4096, 90));
        var suffix = await Stream(c, v, k);
        var own = await Stream(a, v, 0);

        var claim = a.Ownership.ClaimChain(v);
        // Repeats of entries held here change nothing: they still apply, as held.
        var repeat = await a.Streams.ApplyAsync(own, import: false);
        Assert.True(repeat.Ok, repeat.Error);
        var result = await a.Streams.ApplyAsync(suffix, import: false);

        Assert.False(result.Ok);
        Assert.True(result.IsClaimed, result.Error);
        Assert.Contains("written on this host", result.Error);
        Assert.Equal(0, result.Applied);
        Assert.Equal(k, a.GetVolume(v)!.Lsn);
        Assert.True(a.IsWritable(v));
        Assert.Equal(k + 1, (await claim.AppendDataAsync(k + 1, 8192, TempLog.Pattern(4096, 91), durable: true)).Lsn);
        Assert.Equal(TempLog.Pattern(4096, 91), await Read(a, v, 8192, 4096));
    }

    [Fact]
    public async Task Only_the_current_claim_appends()
    {
        using var t = new TempLog();
        await using var a = t.Open();
        var v = (await a.CreateVolumeAsync(VolumeSize, VolumeMode.Async, [])).BaseId;
        var first = a.Ownership.ClaimChain(v);
        Assert.Equal(2, (await first.AppendDataAsync(2, 0, TempLog.Pattern(4096, 1), durable: false)).Lsn);

        // Beside the claim: refused, nothing taken.
        var beside = Assert.Throws<ChainClaimedException>(() => a.AppendDataAsync(v, 3, 0, TempLog.Pattern(4096, 2), durable: false));
        Assert.Contains("written on this host", beside.Message);
        // A newer claim replaces the older one, which refuses from then on.
        var second = a.Ownership.ClaimChain(v);
        Assert.False(first.IsHeld);
        Assert.Throws<ChainClaimedException>(() => first.AppendDataAsync(3, 0, TempLog.Pattern(4096, 3), durable: false));
        // A stale claim's release does not free the chain of its successor.
        first.Release();
        Assert.True(second.IsHeld);
        Assert.Equal(3, (await second.AppendDataAsync(3, 0, TempLog.Pattern(4096, 4), durable: false)).Lsn);
        second.Release();
        Assert.Equal(4, (await a.AppendDataAsync(v, 4, 0, TempLog.Pattern(4096, 5), durable: false)).Lsn);
        Assert.Equal(TempLog.Pattern(4096, 5), await Read(a, v, 0, 4096));
    }

    [Fact]
    public async Task A_view_change_or_a_fork_split_beside_the_claim_is_refused_and_changes_nothing()
    {
        using var t = new TempLog();
        await using var a = t.Open();
        var v = (await a.CreateVolumeAsync(VolumeSize, VolumeMode.Async, [a.HostId])).BaseId;
        await a.WriteAsync(v, 0, TempLog.Pattern(4096, 1));
        await a.WriteAsync(v, 0, TempLog.Pattern(4096, 2));
        var claim = a.Ownership.ClaimChain(v);

        await Assert.ThrowsAsync<ChainClaimedException>(() => a.Ownership.TakeOverAsync(v, [], [a.HostId]));
        await Assert.ThrowsAsync<ChainClaimedException>(() => a.SplitForkAsync(v, 2));
        await Assert.ThrowsAsync<ChainClaimedException>(() => a.TrashVolumeAsync(v));
        Assert.Equal(3, a.GetVolume(v)!.Lsn);
        Assert.True(a.IsWritable(v));

        // Through the claim the same view change is the owner's own.
        var info = await a.Ownership.TakeOverAsync(v, [], [a.HostId], by: claim);
        Assert.Equal(4, info.Lsn);
        Assert.Equal(1, info.ViewNumber);
        Assert.Equal(5, (await claim.AppendDataAsync(5, 4096, TempLog.Pattern(4096, 3), durable: true)).Lsn);
    }

    [Fact]
    public async Task A_resync_over_a_claimed_copy_is_refused_and_the_copy_stays_writable()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        var (v, k) = await Twin(ta, tc);
        await using var c = tc.Open();
        await using var a = ta.Open();
        // The other copy is ahead (so only the claim, not the lsn rule, can refuse its resync here).
        for (var i = 0; i < 3; i++) await c.WriteAsync(v, 0, TempLog.Pattern(8192, 80 + i));
        var chunks = new List<ResyncChunk>();
        var chunk = await c.Resync.ReadAsync(v, Id160.Zero, 0, 1 << 20, c.MaxBlocksPerEntry);
        chunks.Add(chunk);
        while (!chunk.Complete) chunks.Add(chunk = await c.Resync.ReadAsync(v, chunk.Transfer, chunk.NextBlock, 1 << 20, c.MaxBlocksPerEntry));
        var claim = a.Ownership.ClaimChain(v);

        // The client's write races the transfer: it is acknowledged, and the resync does not replace it.
        var write = claim.AppendDataAsync(k + 1, 4096, TempLog.Pattern(4096, 99), durable: true);
        await Assert.ThrowsAsync<ResyncRefusedException>(async () =>
        {
            foreach (var piece in chunks) await a.Resync.ApplyAsync(piece.Data);
        });
        Assert.Equal(k + 1, (await write).Lsn);
        Assert.True(a.IsWritable(v));
        Assert.Equal(k + 1, a.GetVolume(v)!.Lsn);
        Assert.Equal(TempLog.Pattern(4096, 99), await Read(a, v, 4096, 4096));
        Assert.Equal(TempLog.Pattern(4096, 0), await Read(a, v, 0, 4096));
    }

    [Fact]
    public async Task The_owner_steps_down_through_its_claim_and_the_other_writers_entries_then_apply()
    {
        using var ta = new TempLog();
        using var tc = new TempLog();
        var (v, k) = await Twin(ta, tc);
        await using var c = tc.Open();
        await using var a = ta.Open();
        await c.WriteAsync(v, 8192, TempLog.Pattern(4096, 90));
        var replaced = a.Ownership.ClaimChain(v);
        var owner = a.Ownership.ClaimChain(v);

        // Only the current owner steps down.
        await Assert.ThrowsAsync<ChainClaimedException>(() => a.Ownership.StepDownAsync(v, replaced));
        Assert.True(a.IsWritable(v));
        var info = await a.Ownership.StepDownAsync(v, owner);

        Assert.False(info.IsWritable);
        Assert.False(owner.IsHeld);
        Assert.Throws<NotPrimaryException>(() => a.Ownership.ClaimChain(v));
        var result = await a.Streams.ApplyAsync(await Stream(c, v, k), import: false);
        Assert.True(result.Ok, result.Error);
        Assert.Equal(TempLog.Pattern(4096, 90), await Read(a, v, 8192, 4096));
    }
}
