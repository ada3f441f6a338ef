// Marker of the data-plane messages (volume commands, queries and replies) bound to the binary serializer.
namespace CloudFs.Actors.Serialization;

/// <summary>Every message of the volume protocol; bound to <see cref="VolumeMessageSerializer"/> in HOCON.</summary>
public interface IVolumeProtocolMessage;
