// Marker of the node-to-node control messages the Hyperion adapter may carry (besides the management protocol).
namespace CloudFs.Actors.Serialization;

/// <summary>Small control messages between CloudFS nodes; bound to <see cref="ControlMessageSerializer"/> in HOCON.</summary>
public interface IControlMessage;
