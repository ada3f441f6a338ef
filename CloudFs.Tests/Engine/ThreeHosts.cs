// Three log stores in their own temp dirs (each with its own key file, so its own host key) holding one volume
// created on A with replicas [A, B, C] and streamed to B and C: the starting point of the failover tests.
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Engine;

internal sealed class ThreeHosts : IAsyncDisposable
{
    public const int VolumeBytes = 1 << 20;

    private readonly TempLog[] _logs = [new(), new(), new()];
    private readonly LogStore?[] _stores = new LogStore?[3];

    public LogStore A => _stores[0]!;
    public LogStore B => _stores[1]!;
    public LogStore C => _stores[2]!;
    public TempLog LogA => _logs[0];
    public TempLog LogB => _logs[1];
    public TempLog LogC => _logs[2];
    public Id160 Volume { get; private set; }

    public static async Task<ThreeHosts> StartAsync()
    {
        var h = new ThreeHosts();
        for (var i = 0; i < 3; i++) h._stores[i] = h._logs[i].Open();
        h.Volume = (await h.A.CreateVolumeAsync(VolumeBytes, VolumeMode.Sync, [h.A.HostId, h.B.HostId, h.C.HostId])).BaseId;
        await h.A.WriteAsync(h.Volume, 0, TempLog.Pattern(8192, 1), durable: true);
        await Ship(h.A, h.Volume, 0, h.B);
        await Ship(h.A, h.Volume, 0, h.C);
        return h;
    }

    /// <summary>Shares of A's current view for A, B and C, each stored by its host.</summary>
    public void ShareSecret()
    {
        var shares = A.Ownership.SealShares(Volume, [Holder(A), Holder(B), Holder(C)]);
        A.Ownership.StoreShare(shares[0]);
        B.Ownership.StoreShare(shares[1]);
        C.Ownership.StoreShare(shares[2]);
    }

    public static ShareHolder Holder(LogStore s) => new(s.HostId, s.Ownership.HostPublicKey);

    /// <summary>Streams <paramref name="from"/>'s entries after <paramref name="afterLsn"/> into <paramref name="to"/>.</summary>
    public static async Task<ApplyResult> Ship(LogStore from, Id160 volume, long afterLsn, LogStore to, bool mustSucceed = true)
    {
        var ms = new MemoryStream();
        await from.Streams.StreamAsync(volume, afterLsn, ms, follow: false);
        ms.Position = 0;
        var r = await to.Streams.ApplyAsync(ms);
        if (mustSucceed) Assert.True(r.Ok, r.Error);
        return r;
    }

    public static async Task<byte[]> Read(LogStore s, Id160 v, long offset, int length)
    {
        var b = new byte[length];
        await s.ReadAsync(v, offset, b);
        return b;
    }

    /// <summary>Closes store i (with a checkpoint, or as a crash leaves it) and opens it again.</summary>
    public async Task ReopenAsync(int i, bool crash = false)
    {
        if (crash) _stores[i]!.CloseWithoutCheckpoint();
        else await _stores[i]!.DisposeAsync();
        _stores[i] = TempLog.OpenRetrying(_logs[i].Options());
    }

    public async Task CloseAsync(int i)
    {
        if (_stores[i] is { } s) await s.DisposeAsync();
        _stores[i] = null;
    }

    public Task OpenAsync(int i)
    {
        _stores[i] = TempLog.OpenRetrying(_logs[i].Options());
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = 0; i < 3; i++)
            if (_stores[i] is { } s) await s.DisposeAsync();
        foreach (var l in _logs) l.Dispose();
    }
}
