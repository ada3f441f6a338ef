// What VolumeState makes of a command: the events to persist, or why it is refused.
using CloudFs.Actors.Volumes.Events;

namespace CloudFs.Actors.Volumes;

/// <summary>What a command becomes: events to persist (possibly none), or the reason it is refused.</summary>
public readonly record struct Decision(IReadOnlyList<IVolumeEvent> Events, Exception? Error)
{
    public static Decision Accepted(IReadOnlyList<IVolumeEvent> events) => new(events, null);
    public static Decision Refused(Exception error) => new([], error);
}
