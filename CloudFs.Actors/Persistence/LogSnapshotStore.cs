// Snapshot store over the engine: a volume's snapshot is its current head (lsn, version, size, mode), read from the
// engine's in-memory state, so VolumeActor recovery is O(1) and reads no volume data. Nothing is ever saved.
using Akka.Persistence;
using Akka.Persistence.Snapshot;
using CloudFs.Actors.Volumes;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Persistence;

public sealed class LogSnapshotStore : SnapshotStore
{
    private readonly CloudFsStorage _storage = CloudFsStorage.Get(Context.System);

    protected override async Task<SelectedSnapshot?> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        var store = await _storage.StoreAsync.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (!Id160.TryParse(persistenceId, out var volume)) return null;
        var info = store.GetVolume(volume);
        // The head is the only snapshot there is: when the criteria exclude it, the actor replays headers instead.
        if (info is null || info.Lsn > criteria.MaxSequenceNr || info.Lsn < criteria.MinSequenceNr) return null;
        var headers = store.ReadHeaders(volume, info.Lsn, info.Lsn, 1);
        var timestamp = headers.Count == 1 ? DateTimeOffset.FromUnixTimeMilliseconds(headers[0].TimestampUnixMs).UtcDateTime : DateTime.UtcNow;
        if (timestamp > criteria.MaxTimeStamp) return null;
        return new SelectedSnapshot(new SnapshotMetadata(persistenceId, info.Lsn, timestamp), new VolumeHead(info));
    }

    // The head lives in the engine (checkpointed with the index); there is nothing else to keep.
    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken) => Task.CompletedTask;
    protected override Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken) => Task.CompletedTask;
    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken) => Task.CompletedTask;
}
