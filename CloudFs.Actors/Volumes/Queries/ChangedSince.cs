// Query: the ranges of a volume written (data, zeroes, trims) after version Since, up to version Until (null: the
// current one), within [Offset, Offset+Length); answered with ChangedSinceResult. Length 0 only checks that both
// versions are in the volume's history and still available (an NBD client negotiating cloudfs:changed-since).
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Queries;

public sealed record ChangedSince(Id160 VolumeId, Id160 Since, Id160? Until, long Offset, long Length) : IWithVolumeId, IVolumeProtocolMessage;
