// IVolumeGateway over the volume shard region: requests for a volume whose writer (primary) is an actor on this node
// are told to it directly (no ask, no timer, no shard hops); others are one Ask each (reads on the primary go to its
// engine directly), each in an envelope naming the host whose actor takes it (the primary, VolumeRoutes); replies mapped back to the engine's exceptions so the front ends can turn them into NBD errnos and HTTP statuses.
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
/// <param name="routes">Which host's actor of a volume a request goes to (null: this node's routes over <paramref name="placement"/>).</param>
/// <param name="attachments">This node's attachment leases of the volumes it writes: a flush answered here without the
/// volume's actor is checked against them as the actor checks writes (null: no flush is fenced here).</param>
public sealed class ShardedVolumeGateway(IActorRef region, LogStore store, TimeSpan timeout, TimeSpan attemptTimeout, IActorRef? placement = null,
    ReplicationCounters? counters = null, LocalVolumeWriters? local = null, VolumeRoutes? routes = null, WriterAttachments? attachments = null)
    : IVolumeGateway
{
    private readonly VolumeRoutes _routes = routes ?? new VolumeRoutes(store, placement, TimeSpan.FromSeconds(5));

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

    public async ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, long attachment = 0, CancellationToken ct = default)
    {
        if (data.Length <= RemoteChunk || store.IsWritable(volume))
        {
            Expect<VolumeAck>(await SendAsync(volume, new Write(volume, offset, data, fua) { RequestId = NextRequestId(), Attachment = attachment }, ct).ConfigureAwait(false));
            return;
        }
        // To a remote primary: 1 MiB pieces in flight together (the actor keeps their order).
        var pieces = new List<Task<object>>();
        for (var at = 0; at < data.Length; at += RemoteChunk)
            pieces.Add(AskAsync(volume, new Write(volume, offset + at, data.Slice(at, Math.Min(RemoteChunk, data.Length - at)), fua)
                { RequestId = NextRequestId(), Attachment = attachment }, ct));
        foreach (var reply in await Task.WhenAll(pieces).ConfigureAwait(false)) Expect<VolumeAck>(reply);
    }

    public async ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, long attachment = 0, CancellationToken ct = default) =>
        Expect<VolumeAck>(await SendAsync(volume, new WriteZeroes(volume, offset, length, fua) { RequestId = NextRequestId(), Attachment = attachment }, ct).ConfigureAwait(false));

    public ValueTask FlushAsync(Id160 volume, long attachment = 0, CancellationToken ct = default) =>
        // Written here and needing no quorum: every write acknowledged so far is an entry of this node's log, so one
        // flush of the log makes them durable, and no actor needs to see it. A replicated sync volume's flush waits for
        // a durable majority, which its actor counts. A superseded attachment's flush is refused here as its actor
        // would refuse it.
        local is not null && local.TryGet(volume, out _) && store.IsWritable(volume) && store.GetVolume(volume) is { } info
        && !(info.Mode == VolumeMode.Sync && info.Replicas.Count > 1)
            ? attachment != 0 && attachments?.Refusal(volume, attachment) is { } why
                ? ValueTask.FromException(new AttachmentFencedException($"volume {volume}: {why}: its writes are refused"))
                : store.FlushAsync(onCallerIfIdle: true, ct)
            : FlushThroughActorAsync(volume, attachment, ct);

    private async ValueTask FlushThroughActorAsync(Id160 volume, long attachment, CancellationToken ct) =>
        Expect<VolumeAck>(await SendAsync(volume, new Flush(volume) { Attachment = attachment }, ct).ConfigureAwait(false));

    public async ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default) =>
        Expect<MapResult>(await SendAsync(volume, new Map(volume, offset, length), ct).ConfigureAwait(false)).Ranges;

    // A node holding the volume's chain knows the version's size from its own log; any other asks the volume's actor.
    public async ValueTask<long> VersionSizeAsync(Id160 volume, Id160 version, CancellationToken ct = default) =>
        store.GetVolume(volume) is not null
            ? await store.VersionSizeAsync(volume, version, ct).ConfigureAwait(false)
            : Expect<VersionSizeResult>(await AskAsync(volume, new VersionSize(volume, version), ct).ConfigureAwait(false)).SizeBytes;

    // A node holding the volume's chain reads the version from its own log (every replica holds the same entries);
    // any other asks the volume's actor, in pieces like a read.
    public async ValueTask ReadVersionAsync(Id160 volume, Id160 version, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        if (store.GetVolume(volume) is not null)
        {
            await store.ReadVersionAsync(volume, version, offset, destination, ct).ConfigureAwait(false);
            return;
        }
        if (destination.Length == 0)
        {
            Expect<ReadResult>(await AskAsync(volume, new ReadVersion(volume, version, offset, 0), ct).ConfigureAwait(false));
            return;
        }
        var pieces = new List<Task>();
        for (var at = 0; at < destination.Length; at += RemoteChunk)
        {
            var slice = destination.Slice(at, Math.Min(RemoteChunk, destination.Length - at));
            var from = offset + at;
            pieces.Add(Task.Run(async () =>
            {
                var data = Expect<ReadResult>(await AskAsync(volume, new ReadVersion(volume, version, from, slice.Length), ct).ConfigureAwait(false)).Data;
                if (data.Length != slice.Length)
                    throw new CloudFsException($"volume {volume} answered a read of {slice.Length} bytes of version {version} with {data.Length} bytes");
                data.Span.CopyTo(slice.Span);
            }, ct));
        }
        await Task.WhenAll(pieces).ConfigureAwait(false);
    }

    // Through the volume's actor like Map, so any node answers from the chain its primary holds.
    public async ValueTask<ChangedSinceResult> ChangedSinceAsync(Id160 volume, Id160 since, Id160? until, long offset, long length, CancellationToken ct = default) =>
        Expect<ChangedSinceResult>(await SendAsync(volume, new ChangedSince(volume, since, until, offset, length), ct).ConfigureAwait(false));

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
        // A replicated volume's primary may be a host that just died: its host's shard stays allocated there until
        // the cluster removes it, and a request sent there is lost. So when no answer came within attemptTimeout the
        // request is sent again (and again after 2x, 4x ... that time), to the primary placement then names, while the
        // earlier attempts are still awaited: a primary that is only slow still answers, a dead one is replaced by the
        // failover.
        // The same holds for any volume whose actor was stopped by a storage failure (a request that reached it while
        // it stopped is lost; the next one meets a fresh actor). Large local writes are not repeated.
        // A write's attempts share its request id: the actor that has it ignores the others, so a slow write is
        // appended once. A fresh actor applies it again, the same bytes at the same place, and messages to one actor
        // keep their order. Repeated attempts carry a copy of the data: they may be delivered or serialized after the
        // first answer, when the caller has reused its buffer.
        var retry = placement is not null && (Replicated(volume) || message is not Write { Data.Length: > RemoteChunk });
        var retryNotPrimary = placement is not null && Replicated(volume);
        // Each attempt goes to the actor on the host the routes name (the primary): unanswered, or answered "not the
        // primary", that route is forgotten and the next attempt asks placement again.
        var asks = new List<(Task<object> Ask, Id160 Host)>();
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
                if (asks.Count > 0) _routes.Forget(volume, asks[^1].Host);
                if (await _routes.PrimaryAsync(volume, ct).ConfigureAwait(false) is not { } host)
                {
                    // A failover is choosing the primary (or placement is slow): asked again in a moment.
                    nextAttempt = DateTime.UtcNow + RetryDelay;
                }
                else
                {
                    if (attempts++ > 0) counters?.Repeated();
                    if (attempts == 2 && message is Write w) message = w with { Data = w.Data.ToArray() };
                    left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) continue;
                    asks.Add((region.Ask<object>(new VolumeEnvelope(host, message), left, ct), host));
                    nextAttempt = retry ? DateTime.UtcNow + interval : DateTime.MaxValue;
                    if (interval < MaxAttemptInterval) interval += interval;
                }
                now = DateTime.UtcNow;
                left = deadline - now;
                if (left <= TimeSpan.Zero) continue;
            }
            var wait = nextAttempt == DateTime.MaxValue || nextAttempt - now > left ? left : nextAttempt - now;
            if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
            var timer = Task.Delay(wait, ct);
            var first = await Task.WhenAny(asks.Select(a => (Task)a.Ask).Append(timer)).ConfigureAwait(false);
            if (first == timer) { await timer.ConfigureAwait(false); continue; }
            var index = asks.FindIndex(a => a.Ask == first);
            var (ask, askedHost) = asks[index];
            asks.RemoveAt(index);
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
            if (moving) _routes.Forget(volume, askedHost);
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
