// IVolumeGateway over the volume shard region: one Ask per request (reads on the primary go to its engine directly),
// replies mapped back to the engine's exceptions so the front ends can turn them into NBD errnos and HTTP statuses.
using Akka.Actor;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Gateway;

public sealed class ShardedVolumeGateway(IActorRef region, LogStore store, TimeSpan timeout) : IVolumeGateway
{
    // Listing needs no actor: the volumes this node holds are in its engine.
    public Task<IReadOnlyList<VolumeInfo>> ListAsync(CancellationToken ct = default) => Task.FromResult(store.ListVolumes());

    public Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct = default) => Task.FromResult(store.GetVolume(volume));

    public ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default) =>
        // On the primary the engine's index is the one its VolumeActor appends through, updated before a write is
        // acknowledged: reading it directly sees every acknowledged write and spares each read an ask round trip
        // through the write pipeline. Anywhere else (a replica, issue 4) the read goes to the volume's actor.
        store.IsWritable(volume)
            ? store.ReadAsync(volume, offset, destination, ct)
            : ReadThroughActorAsync(volume, offset, destination, ct);

    private async ValueTask ReadThroughActorAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct)
    {
        var reply = await AskAsync(volume, new Read(volume, offset, destination.Length), ct).ConfigureAwait(false);
        var data = Expect<ReadResult>(reply).Data;
        if (data.Length != destination.Length)
            throw new CloudFsException($"volume {volume} answered a read of {destination.Length} bytes with {data.Length} bytes");
        data.Span.CopyTo(destination.Span);
    }

    public async ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, CancellationToken ct = default) =>
        Expect<VolumeAck>(await AskAsync(volume, new Write(volume, offset, data, fua), ct).ConfigureAwait(false));

    public async ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, CancellationToken ct = default) =>
        Expect<VolumeAck>(await AskAsync(volume, new WriteZeroes(volume, offset, length, fua), ct).ConfigureAwait(false));

    public async ValueTask FlushAsync(Id160 volume, CancellationToken ct = default) =>
        Expect<VolumeAck>(await AskAsync(volume, new Flush(volume), ct).ConfigureAwait(false));

    public async ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default) =>
        Expect<MapResult>(await AskAsync(volume, new Map(volume, offset, length), ct).ConfigureAwait(false)).Ranges;

    private async Task<object> AskAsync(Id160 volume, IWithVolumeId message, CancellationToken ct)
    {
        try
        {
            return await region.Ask<object>(message, timeout, ct).ConfigureAwait(false);
        }
        catch (AskTimeoutException e)
        {
            throw new CloudFsException($"volume {volume} did not answer within {timeout.TotalSeconds:0.#} s", e);
        }
    }

    private static T Expect<T>(object reply) => reply switch
    {
        T ok => ok,
        VolumeFailure failure => throw failure.ToException(),
        Status.Failure f => throw new CloudFsException($"volume request failed: {f.Cause.Message}", f.Cause),
        _ => throw new CloudFsException($"unexpected answer {reply.GetType().Name} from a volume actor"),
    };
}
