// Every message addressed to one volume carries its id; the shard message extractor routes on it.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes;

public interface IWithVolumeId
{
    Id160 VolumeId { get; }
}
