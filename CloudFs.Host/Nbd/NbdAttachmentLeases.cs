// The read-write attachment leases this NBD server's connections hold, shared per (volume, client host): several
// connections of one client (multi-conn: nbdcopy, qemu with several queues, nbdfuse -C) are one attachment, and a
// connection from another client, through this node or any other, is served read-only (docs/ATTACH.md). The lease
// itself is the volume writer's (HeldAttachment); this only counts its users here.
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

internal sealed class NbdAttachmentLeases(IVolumeGateway gateway)
{
    private readonly object _gate = new();
    private readonly Dictionary<(Id160 Volume, string Client), Shared> _held = new();
    // Leases whose last connection ended and whose release the writer has not answered yet. The same client connecting
    // again meanwhile (qemu-io run twice in a row) waits for it: asked at once, the writer would still see the old lease
    // held and the new connection would be served read-only. The wait is bounded by HeldAttachment's release wait.
    private readonly Dictionary<(Id160 Volume, string Client), Task> _releasing = new();
    private int _waiting;

    /// <summary>Connections waiting now for their client's previous lease to be released.</summary>
    public int WaitingForRelease => Volatile.Read(ref _waiting);

    /// <summary>
    /// The client's share of the volume's read-write lease (dispose it when the connection ends), or why the connection
    /// is read-only (<see cref="AttachmentRefused.Lost"/>: a named attachment whose lease was superseded). <paramref name="lost"/>
    /// is called if the lease is lost later: the connection must end. <paramref name="name"/>: the attachment's name
    /// (export VOLUME#NAME), or null; connections of one client under different names are different attachments.
    /// </summary>
    public async Task<(Use? Lease, AttachmentRefused? Refusal)> AttachAsync(Id160 volume, string client, string holder, string? name, Action<string> lost,
        CancellationToken ct)
    {
        var key = (volume, Key(client, name));
        Shared shared;
        while (true)
        {
            Task? releasing = null;
            lock (_gate)
            {
                if (!_held.TryGetValue(key, out shared!) && !_releasing.TryGetValue(key, out releasing))
                {
                    shared = new Shared(this, key);
                    // Not cancelled by one connection's handshake: others may wait for the same lease. It ends by itself
                    // (a grant, a refusal, or an ask timeout).
                    shared.Acquired = HeldAttachment.AcquireAsync(gateway, volume, holder, client, name, shared.OnLost, CancellationToken.None);
                    _held[key] = shared;
                }
                if (releasing is null)
                {
                    shared.Users++;
                    shared.Lost += lost;
                    break;
                }
            }
            Interlocked.Increment(ref _waiting);
            try { await releasing.WaitAsync(ct).ConfigureAwait(false); }
            finally { Interlocked.Decrement(ref _waiting); }
        }
        try
        {
            var (held, refusal) = await shared.Acquired.WaitAsync(ct).ConfigureAwait(false);
            if (held is not null) return (new Use(shared, lost, held.Lease), null);
            await LeaveAsync(shared, lost).ConfigureAwait(false);
            return (null, refusal);
        }
        catch
        {
            await LeaveAsync(shared, lost).ConfigureAwait(false);
            throw;
        }
    }

    private static string Key(string client, string? name) => name is null ? client : client + "#" + name;

    /// <summary>What <see cref="AttachAsync"/> would answer now (null: writable), without taking anything (NBD_OPT_INFO).</summary>
    public async Task<AttachmentRefused?> ProbeAsync(Id160 volume, string client, string holder, string? name, CancellationToken ct)
    {
        var key = (volume, Key(client, name));
        Task? releasing;
        lock (_gate)
        {
            if (_held.ContainsKey(key)) return null;
            _releasing.TryGetValue(key, out releasing);
        }
        if (releasing is not null) await releasing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // While the writer waits for a previous holder (a new primary's grace), or for this client's connection
            // through another node to let go, so does the answer: OPT_GO would wait too.
            return await HeldAttachment.AskAsync(gateway, new AcquireAttachment(volume.ToString(), holder, 0, Probe: true, Name: name, Client: client), ct)
                .ConfigureAwait(false) as AttachmentRefused;
        }
        catch (Exception e) when (e is not OperationCanceledException) { return null; }
    }

    private async Task LeaveAsync(Shared shared, Action<string> lost)
    {
        HeldAttachment? releasing = null;
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            shared.Lost -= lost;
            if (--shared.Users > 0) return;
            if (_held.TryGetValue(shared.Key, out var current) && current == shared)
            {
                _held.Remove(shared.Key);
                if (shared.Acquired is { IsCompletedSuccessfully: true } done && done.Result.Held is { } held)
                {
                    releasing = held;
                    _releasing[shared.Key] = released.Task;
                }
            }
            else if (shared.Acquired is { IsCompletedSuccessfully: true } lostOne && lostOne.Result.Held is { } superseded) releasing = superseded;
        }
        if (releasing is null) return;
        try { await releasing.DisposeAsync().ConfigureAwait(false); }
        finally
        {
            lock (_gate)
                if (_releasing.TryGetValue(shared.Key, out var pending) && pending == released.Task) _releasing.Remove(shared.Key);
            released.SetResult();
        }
    }

    internal sealed class Shared(NbdAttachmentLeases owner, (Id160, string) key)
    {
        public NbdAttachmentLeases Owner => owner;
        public (Id160, string) Key { get; } = key;
        public Task<(HeldAttachment? Held, AttachmentRefused? Refusal)> Acquired = null!;
        public int Users;
        public event Action<string>? Lost;

        public void OnLost(string reason)
        {
            Action<string>? handlers;
            lock (owner._gate)
            {
                handlers = Lost;
                // The next connection of this client asks the writer afresh (and is told who holds it now).
                if (owner._held.TryGetValue(Key, out var current) && current == this) owner._held.Remove(Key);
            }
            handlers?.Invoke(reason);
        }
    }

    /// <summary>A connection's share of the lease; dispose it when the connection ends.</summary>
    /// <param name="lease">The lease's epoch: the connection's writes carry it.</param>
    internal sealed class Use(Shared shared, Action<string> lost, long lease) : IAsyncDisposable
    {
        private int _disposed;

        public long Lease => lease;

        public ValueTask DisposeAsync() =>
            Interlocked.Exchange(ref _disposed, 1) == 0 ? new ValueTask(shared.Owner.LeaveAsync(shared, lost)) : ValueTask.CompletedTask;
    }
}
