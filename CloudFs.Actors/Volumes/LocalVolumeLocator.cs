// The one-node volume locator: a volume is on this member when this member's log holds it.
using Akka.Actor;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

/// <summary>One node: the volume is here when this node's log holds it.</summary>
public sealed class LocalVolumeLocator(LogStore store, Func<Address> selfAddress) : IVolumeLocator
{
    public IReadOnlyCollection<Address> HoldersOf(Id160 volume) =>
        store.GetVolume(volume) is null ? [] : [selfAddress()];
}
