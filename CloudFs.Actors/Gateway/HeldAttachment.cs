// A volume's read-write attachment lease as its holder (an NBD connection) keeps it: taken at negotiation from the
// volume's writer, renewed every third of its term while the connection lives, released when it ends. A renewal the
// writer refuses (an operator's `cloudfs detach`, or the lease lapsed and another holder took it) calls Lost, and the
// connection ends. Its writes carry the lease (Lease), and the writer refuses them as soon as it is superseded, however
// late they arrive: the holder never writes beside the new one.
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Gateway;

public sealed class HeldAttachment : IAsyncDisposable
{
    /// <summary>How long a release is waited for when the holder ends (the lease lapses by itself otherwise).</summary>
    private static readonly TimeSpan ReleaseWait = TimeSpan.FromSeconds(2);

    /// <summary>How often a fresh holder asks again while a new primary waits for a previous holder (at most), and how
    /// soon a holder whose renewal went unanswered (a failover in progress) renews again.</summary>
    public static readonly TimeSpan AskAgain = TimeSpan.FromMilliseconds(250);

    private readonly IVolumeGateway _gateway;
    private readonly Id160 _volume;
    private readonly string _holder;
    private readonly string? _name;
    private readonly long _lease;
    private readonly TimeSpan _renewEvery;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _renewals;
    private readonly Action<string> _lost;

    private HeldAttachment(IVolumeGateway gateway, Id160 volume, string holder, string? name, AttachmentGranted granted, Action<string> lost)
    {
        _gateway = gateway;
        _volume = volume;
        _holder = holder;
        _name = name;
        _lease = granted.Lease;
        _renewEvery = TimeSpan.FromMilliseconds(Math.Max(100, granted.TermMs / 3));
        _lost = lost;
        _renewals = RenewAsync();
    }

    /// <summary>The lease's epoch, which every write made under it carries (the writer refuses it once superseded).</summary>
    public long Lease => _lease;

    /// <summary>
    /// The lease, or null and why not (held by another, or the writer could not be asked). While the writer says the
    /// primary moved moments ago (a previous holder may reclaim), asks again until <paramref name="ct"/> ends.
    /// </summary>
    /// <param name="name">The name the client gave its attachment (null: none): it gets its own lease back when it
    /// reconnects, and is refused (<see cref="AttachmentRefused.Lost"/>) once that lease was superseded.</param>
    /// <param name="client">The client host (its address; null: unknown): while it holds the lease through another node, it
    /// is waited for as long as a release takes.</param>
    /// <param name="lost">Called once if a renewal is refused, with the writer's reason.</param>
    public static async Task<(HeldAttachment? Held, AttachmentRefused? Refusal)> AcquireAsync(IVolumeGateway gateway, Id160 volume, string holder,
        string? client, string? name, Action<string> lost, CancellationToken ct)
    {
        AttachmentAnswer answer;
        try { answer = await AskAsync(gateway, new AcquireAttachment(volume.ToString(), holder, 0, Name: name, Client: client), ct).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (null, new AttachmentRefused($"volume {volume}: its writer did not grant the read-write attachment ({e.Message})", Lost: false));
        }
        return answer switch
        {
            AttachmentGranted granted => (new HeldAttachment(gateway, volume, holder, name, granted, lost), null),
            AttachmentRefused refused => (null, refused),
            _ => throw new InvalidOperationException($"unexpected answer {answer.GetType().Name} to an attachment request"),
        };
    }

    /// <summary>
    /// Asks the writer for the attachment until its answer is settled: while it says to ask again, asks again (after at
    /// most <see cref="AskAgain"/>): a new primary waits for a previous holder (until <paramref name="ct"/> ends), or the
    /// asker's own client holds it through another node and may be letting go (for at most <see cref="ReleaseWait"/>,
    /// as long as a release takes; then the refusal stands).
    /// </summary>
    public static async Task<AttachmentAnswer> AskAsync(IVolumeGateway gateway, AcquireAttachment request, CancellationToken ct)
    {
        var sameClientUntil = DateTime.UtcNow + ReleaseWait;
        while (true)
        {
            var answer = await gateway.AcquireAttachmentAsync(request, ct).ConfigureAwait(false);
            if (answer is not AttachmentRefused { RetryAfterMs: > 0 } wait || (wait.SameClient && DateTime.UtcNow >= sameClientUntil)) return answer;
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(wait.RetryAfterMs, AskAgain.TotalMilliseconds)), ct).ConfigureAwait(false);
        }
    }

    private async Task RenewAsync()
    {
        var ct = _stop.Token;
        var next = _renewEvery;
        try
        {
            while (true)
            {
                await Task.Delay(next, ct).ConfigureAwait(false);
                AttachmentAnswer answer;
                // A writer that does not answer (a failover in progress) is asked again soon: the holder reclaims its
                // lease at its first renewal the new primary answers, and the new primary keeps fresh holders out
                // until then (docs/ATTACH.md).
                try { answer = await _gateway.AcquireAttachmentAsync(new AcquireAttachment(_volume.ToString(), _holder, _lease, Name: _name), ct).ConfigureAwait(false); }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    next = AskAgain;
                    continue;
                }
                if (answer is AttachmentRefused refused)
                {
                    _lost(refused.Reason);
                    return;
                }
                next = _renewEvery;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        await _renewals.ConfigureAwait(false);
        using var wait = new CancellationTokenSource(ReleaseWait);
        try { await _gateway.ReleaseAttachmentAsync(new ReleaseAttachment(_volume.ToString(), _lease), wait.Token).ConfigureAwait(false); }
        catch (Exception) { /* the lease lapses by itself within its term */ }
        _stop.Dispose();
    }
}
