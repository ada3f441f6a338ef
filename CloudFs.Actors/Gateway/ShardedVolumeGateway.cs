// IVolumeGateway over the volume shard region: requests for a volume whose writer (primary) is an actor on this node
// are told to it directly (no ask, no timer, no shard hops); others are one Ask each (reads on the primary go to its
// engine directly); replies mapped back to the engine's exceptions so the front ends can turn them into NBD errnos and HTTP statuses.
// Requests for a volume whose primary is another host travel in chunks of at most 1 MiB (far below the frame size),
// and "not the primary" answers, and writes failed by the primary's log device, are retried while a failover moves the
// volume (up to the ask timeout).
// Writes carry a request id, so an actor that already has a request ignores its repeated attempts.
using Akka.Actor;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Management;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Gateway;

/// <param name="timeout">A request fails after this long (cloudfs.volumes.ask-timeout).</param>
/// <param name="placement">The placement singleton's proxy: volumes this host's log does not hold are looked up there.</param>
/// <param name="attemptTimeout">One attempt of a request to a replicated volume (retried until <paramref name="timeout"/>).</param>
/// <param name="counters">Where the repeated attempts are counted (the node's metrics).</param>
/// <param name="local">The volume actors of this node that are their volume's writer: told directly (null: always the region).</param>
public sealed class ShardedVolumeGateway(IActorRef region, LogStore store, TimeSpan timeout, TimeSpan attemptTimeout, IActorRef? placement = null,
    ReplicationCounters? counters = null, LocalVolumeWriters? local = null)
    : IVolumeGateway
{

    /// <summary>Largest block payload of one remote message.</summary>
    public const int RemoteChunk = 1 << 20;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxAttemptInterval = TimeSpan.FromSeconds(8);
    // Request ids: a random start per process, so two gateways' ids do not meet in practice; 0 means "none".
    private static long s_requestIds = Random.Shared.NextInt64();

    private static long NextRequestId()
    {
        long id;
        while ((id = Interlocked.Increment(ref s_requestIds)) == 0) { }
        return id;
    }

    // Listing needs no actor: the volumes this node holds are in its engine.
    public Task<IReadOnlyList<VolumeInfo>> ListAsync(CancellationToken ct = default) => Task.FromResult(store.ListVolumes());

    /// <summary>How long a lookup of a volume this node does not hold is used (a failover or a resize is seen after it).</summary>
    public static readonly TimeSpan LocationKeep = TimeSpan.FromSeconds(2);

    private readonly VolumeLocationCache _locations = new(async (volume, ct) =>
    {
        if (placement is null) return null;
        try { return await placement.Ask<VolumeLocation>(new LocateVolume(volume.ToString()), TimeSpan.FromSeconds(5), ct).ConfigureAwait(false); }
        catch (AskTimeoutException) { return null; }
    }, LocationKeep);

    public Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct = default) =>
        // Not held here: any node serves any volume, through its primary, found by one lookup (cached a moment).
        store.GetVolume(volume) is { } local ? Task.FromResult<VolumeInfo?>(local) : _locations.GetAsync(volume, ct);

    public async Task<VolumeInfo?> FindAsync(string volume, CancellationToken ct = default)
    {
        if (Id160.TryParse(volume, out var id)) return await GetAsync(id, ct).ConfigureAwait(false);
        if (VolumeName.Check(volume) is not null) return null;
        // A name: placement's name index knows every volume's (one lookup, not a scan of the volumes held here).
        if (placement is null) return store.ListVolumes().FirstOrDefault(v => v.Name == volume && !v.IsTrashed);
        VolumeLocation located;
        try { located = await placement.Ask<VolumeLocation>(new LocateVolume(volume), TimeSpan.FromSeconds(5), ct).ConfigureAwait(false); }
        catch (AskTimeoutException) { return null; }
        return located.Volume is { } found && Id160.TryParse(found.Id, out id) ? await GetAsync(id, ct).ConfigureAwait(false) : null;
    }

    public ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default) =>
        // On the primary the engine's index is the one its VolumeActor appends through, updated before a write is
        // acknowledged: reading it directly sees every acknowledged write and spares each read an ask round trip
        // through the write pipeline. Anywhere else the read goes to the volume's actor on the primary.
        store.IsWritable(volume)
            ? store.ReadAsync(volume, offset, destination, ct)
            : ReadThroughActorAsync(volume, offset, destination, ct);

    private async ValueTask ReadThroughActorAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct)
    {
        var pieces = new List<Task>();
        for (var at = 0; at < destination.Length; at += RemoteChunk)
        {
            var slice = destination.Slice(at, Math.Min(RemoteChunk, destination.Length - at));
            var from = offset + at;
            pieces.Add(Task.Run(async () =>
            {
                var data = Expect<ReadResult>(await AskAsync(volume, new Read(volume, from, slice.Length), ct).ConfigureAwait(false)).Data;
                if (data.Length != slice.Length)
                    throw new CloudFsException($"volume {volume} answered a read of {slice.Length} bytes with {data.Length} bytes");
                data.Span.CopyTo(slice.Span);
            }, ct));
        }
        await Task.WhenAll(pieces).ConfigureAwait(false);
    }

    public async ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, CancellationToken ct = default)
    {
        if (data.Length <= RemoteChunk || store.IsWritable(volume))
        {
            Expect<VolumeAck>(await SendAsync(volume, new Write(volume, offset, data, fua) { RequestId = NextRequestId() }, ct).ConfigureAwait(false));
            return;
        }
        // To a remote primary: 1 MiB pieces in flight together (the actor keeps their order).
        var pieces = new List<Task<object>>();
        for (var at = 0; at < data.Length; at += RemoteChunk)
            pieces.Add(AskAsync(volume, new Write(volume, offset + at, data.Slice(at, Math.Min(RemoteChunk, data.Length - at)), fua) { RequestId = NextRequestId() }, ct));
        foreach (var reply in await Task.WhenAll(pieces).ConfigureAwait(false)) Expect<VolumeAck>(reply);
    }

    public async ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, CancellationToken ct = default) =>
        Expect<VolumeAck>(await SendAsync(volume, new WriteZeroes(volume, offset, length, fua) { RequestId = NextRequestId() }, ct).ConfigureAwait(false));

    public ValueTask FlushAsync(Id160 volume, CancellationToken ct = default) =>
        // Written here and needing no quorum: every write acknowledged so far is an entry of this node's log, so one
        // flush of the log makes them durable, and no actor needs to see it. A replicated sync volume's flush waits for
        // a durable majority, which its actor counts.
        local is not null && local.TryGet(volume, out _) && store.IsWritable(volume) && store.GetVolume(volume) is { } info
        && !(info.Mode == VolumeMode.Sync && info.Replicas.Count > 1)
            ? store.FlushAsync(ct)
            : FlushThroughActorAsync(volume, ct);

    private async ValueTask FlushThroughActorAsync(Id160 volume, CancellationToken ct) =>
        Expect<VolumeAck>(await SendAsync(volume, new Flush(volume), ct).ConfigureAwait(false));

    public async ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default) =>
        Expect<MapResult>(await SendAsync(volume, new Map(volume, offset, length), ct).ConfigureAwait(false)).Ranges;

    // Attachment leases live on the volume's writer; asked through the region, which finds it (and retries while a
    // failover moves it). Only a connection's negotiation and its renewals every few seconds come here.
    public async Task<AttachmentAnswer> AcquireAttachmentAsync(AcquireAttachment request, CancellationToken ct = default) =>
        Expect<AttachmentAnswer>(await AskAsync(request.VolumeId, request, ct).ConfigureAwait(false));

    public async Task<AttachmentReleased> ReleaseAttachmentAsync(ReleaseAttachment request, CancellationToken ct = default) =>
        Expect<AttachmentReleased>(await AskAsync(request.VolumeId, request, ct).ConfigureAwait(false));

    /// <summary>To this node's writer of the volume when there is one, else through the region (with repeats).</summary>
    private Task<object> SendAsync(Id160 volume, IWithVolumeId message, CancellationToken ct) =>
        local is not null && local.TryGet(volume, out var writer) ? TellLocalAsync(writer, volume, message, ct) : AskAsync(volume, message, ct);

    private async Task<object> TellLocalAsync(IActorRef writer, Id160 volume, IWithVolumeId message, CancellationToken ct)
    {
        // No timer: an actor that is alive answers every request (its failures included), and one that stopped turns
        // the request into a dead letter, which LocalVolumeWriters hands back here.
        var reply = new LocalReply(local!);
        writer.Tell(message, reply);
        var answer = await reply.Answer.ConfigureAwait(false);
        // Lost (the actor stopped after it was looked up), or this node is no longer the writer (a failover moved the
        // volume), or its log device failed: the region finds the volume's current actor and repeats as it must.
        if (ReferenceEquals(answer, LocalReply.LostRequest)
            || answer is VolumeFailure { Kind: VolumeErrorKind.NotPrimary }
            || answer is VolumeFailure { Kind: VolumeErrorKind.DeviceFailed } && IsWrite(message) && placement is not null && Replicated(volume))
            return await AskAsync(volume, message, ct).ConfigureAwait(false);
        return answer;
    }

    private async Task<object> AskAsync(Id160 volume, IWithVolumeId message, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        // A replicated volume's primary may be a host that just died: its shard stays allocated there until the
        // cluster removes it, and a request sent there is lost. So when no answer came within attemptTimeout the
        // request is sent again (and again after 2x, 4x ... that time), while the earlier attempts are still awaited:
        // a primary that is only slow still answers, a dead one is replaced by the failover.
        // The same holds for any volume whose actor was stopped by a storage failure (a request that reached it while
        // it stopped is lost; the next one meets a fresh actor). Large local writes are not repeated.
        // A write's attempts share its request id: the actor that has it ignores the others, so a slow write is
        // appended once. A fresh actor applies it again, the same bytes at the same place, and messages to one actor
        // keep their order. Repeated attempts carry a copy of the data: they may be delivered or serialized after the
        // first answer, when the caller has reused its buffer.
        var retry = placement is not null && (Replicated(volume) || message is not Write { Data.Length: > RemoteChunk });
        var retryNotPrimary = placement is not null && Replicated(volume);
        var asks = new List<Task<object>>();
        var attempts = 0;
        var interval = attemptTimeout;
        var nextAttempt = DateTime.UtcNow;
        while (true)
        {
            var now = DateTime.UtcNow;
            var left = deadline - now;
            if (left <= TimeSpan.Zero) throw new CloudFsException($"volume {volume} did not answer within {timeout.TotalSeconds:0.#} s");
            if (now >= nextAttempt)
            {
                if (attempts++ > 0) counters?.Repeated();
                if (attempts == 2 && message is Write w) message = w with { Data = w.Data.ToArray() };
                asks.Add(region.Ask<object>(message, left, ct));
                nextAttempt = retry ? now + interval : DateTime.MaxValue;
                if (interval < MaxAttemptInterval) interval += interval;
            }
            var wait = nextAttempt == DateTime.MaxValue || nextAttempt - now > left ? left : nextAttempt - now;
            var timer = Task.Delay(wait, ct);
            var first = await Task.WhenAny(asks.Append<Task>(timer)).ConfigureAwait(false);
            if (first == timer) { await timer.ConfigureAwait(false); continue; }
            var ask = (Task<object>)first;
            asks.Remove(ask);
            object reply;
            try
            {
                reply = await ask.ConfigureAwait(false);
            }
            catch (AskTimeoutException e)
            {
                if (asks.Count > 0) continue;
                throw new CloudFsException($"volume {volume} did not answer within {timeout.TotalSeconds:0.#} s", e);
            }
            // While a failover moves the volume, the old or a not-yet-current actor answers "not the primary". A primary
            // whose log device failed fails writes until placement has handed the volume to a healthy replica, which
            // then appends them (durably where asked): a real success on a majority, not a retried fdatasync.
            var moving = reply is VolumeFailure { Kind: VolumeErrorKind.NotPrimary }
                         || reply is VolumeFailure { Kind: VolumeErrorKind.DeviceFailed } && IsWrite(message);
            if (moving && retryNotPrimary && DateTime.UtcNow + RetryDelay < deadline)
            {
                await Task.Delay(RetryDelay, ct).ConfigureAwait(false);
                nextAttempt = DateTime.UtcNow;
                interval = attemptTimeout;
                continue;
            }
            return reply;
        }
    }

    private static bool IsWrite(IWithVolumeId message) => message is Write or WriteZeroes or Flush;

    // Only a volume with replicas can have its primary move; anything else answers "not the primary" for good.
    private bool Replicated(Id160 volume) => store.GetVolume(volume) is not { } info || info.Replicas.Count > 1;

    private static T Expect<T>(object reply) => reply switch
    {
        T ok => ok,
        VolumeFailure failure => throw failure.ToException(),
        Status.Failure f => throw new CloudFsException($"volume request failed: {f.Cause.Message}", f.Cause),
        _ => throw new CloudFsException($"unexpected answer {reply.GetType().Name} from a volume actor"),
    };
}
