// Akka extension through which the journal, the snapshot store and the volume actors reach the node's LogStore.
// The BlockDeviceActor sets it once the device is open; users await StoreAsync (the journal stashes meanwhile).
using Akka.Actor;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Persistence;

public sealed class CloudFsStorage : IExtension
{
    private readonly TaskCompletionSource<LogStore> _store = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DeletedMarkers? _deleted;

    public static CloudFsStorage Get(ActorSystem system) => system.WithExtension<CloudFsStorage, CloudFsStorageProvider>();

    /// <summary>Completes when the device is open (or faults when it could not be opened).</summary>
    public Task<LogStore> StoreAsync => _store.Task;

    /// <summary>The open store; throws when it is not open (yet).</summary>
    public LogStore Store => _store.Task.IsCompletedSuccessfully
        ? _store.Task.Result
        : throw new InvalidOperationException("the CloudFS log store is not open on this node");

    /// <summary>The journal's deleted-to markers, kept in a small directory next to the device.</summary>
    public DeletedMarkers Deleted => _deleted ?? throw new InvalidOperationException("the CloudFS log store is not open on this node");

    /// <param name="devicePath">The device the store was opened on; markers go to "DEVICE.journal/".</param>
    public void SetStore(LogStore store, string devicePath)
    {
        _deleted = new DeletedMarkers(devicePath + ".journal");
        if (!_store.TrySetResult(store)) throw new InvalidOperationException("the CloudFS log store was already set on this node");
    }

    public void Fail(Exception error) => _store.TrySetException(error);
}

public sealed class CloudFsStorageProvider : ExtensionIdProvider<CloudFsStorage>
{
    public override CloudFsStorage CreateExtension(ExtendedActorSystem system) => new();
}
