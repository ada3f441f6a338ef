// A command that makes the primary's VolumeActor append one entry of its own between writes (a view change, a
// lifecycle entry): the actor drains its writes in flight, runs the change in the engine, answers, and recovers afresh
// from the new head (its sequence numbers must include that entry).
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Commands;

public interface IHeadChange : IWithVolumeId
{
    /// <summary>Appends the entry through the engine (the volume's writer here); the volume as it is then.</summary>
    Task<VolumeInfo> ApplyAsync(LogStore store);
}
