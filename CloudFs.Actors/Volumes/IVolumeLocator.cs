// Which cluster members hold a volume's data: the allocation strategy places the volume's shard only there.
using Akka.Actor;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

public interface IVolumeLocator
{
    /// <summary>Addresses of the members whose logs hold <paramref name="volume"/> (empty when none is known).</summary>
    IReadOnlyCollection<Address> HoldersOf(Id160 volume);
}
